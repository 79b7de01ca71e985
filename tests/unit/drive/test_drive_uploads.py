"""Where an upload goes (D2's three rules) and what is refused."""

from __future__ import annotations

import pytest

from puras_common.drive_paths import DrivePathError
from puras_drive.domain.uploads import upload_path


@pytest.mark.parametrize(
    ("path", "filename", "expected"),
    [
        (None, "Photo.JPG", "uploads/ID.jpg"),
        ("", "archive.tar.gz", "uploads/ID.gz"),
        ("  ", "README", "uploads/ID"),
        ("", None, "uploads/ID"),
        ("", ".bashrc", "uploads/ID"),
        ("", "weird.ext with space", "uploads/ID"),
        ("photos/", "cat.png", "photos/cat.png"),
        ("./photos//2024/", "C:\\Users\\me\\cat.png", "photos/2024/cat.png"),
        ("photos/", "dir/sub/cat.png", "photos/cat.png"),
        ("a/b/exact.txt", "ignored.png", "a/b/exact.txt"),
        ("a/./b.txt", None, "a/b.txt"),
    ],
)
def test_the_three_rules(path: str | None, filename: str | None, expected: str) -> None:
    assert upload_path(path, filename, "ID") == expected


@pytest.mark.parametrize(
    ("path", "filename"),
    [
        ("../x.txt", "x"),
        ("%2e%2e/x.txt", "x"),
        ("/etc/passwd", "x"),
        ("a\\b", "x"),
        ("a\x00b", "x"),
        ("folder/", ".."),
        ("folder/", None),
        ("folder/", "bad\x01name"),
    ],
)
def test_a_path_that_escapes_or_names_nothing_is_refused(path: str, filename: str | None) -> None:
    with pytest.raises(DrivePathError):
        upload_path(path, filename, "ID")
