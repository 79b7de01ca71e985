"""The SDK reads a drive path by the services' own rules (D9): one normalizer, the SDK's,
which ``puras_common.drive_paths`` re-exports."""

from __future__ import annotations

from pathlib import Path

import pytest

import puras_common.drive_paths as services_paths
from puras import PurasError, _drive_paths, load_bytes, load_path

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


@pytest.fixture
def drive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A job's working directory with its ``drive/``; returns the drive."""
    (tmp_path / "drive/uploads").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "drive"


def test_the_services_import_the_sdk_normalizer() -> None:
    for name in services_paths.__all__:
        assert getattr(services_paths, name) is getattr(_drive_paths, name), name
    assert services_paths.__all__ == _drive_paths.__all__


@pytest.mark.parametrize("raw", ["uploads/a.png", "uploads//a.png", "./uploads/./a.png"])
def test_a_path_is_read_in_its_canonical_form(drive: Path, raw: str) -> None:
    (drive / "uploads/a.png").write_bytes(PNG)
    assert load_bytes(raw) == PNG
    assert load_path({"drive_path": raw}) == drive / "uploads/a.png"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("uploads/a\x85.png", "U+0085"),  # C1 control: the old SDK rules let it through
        ("uploads/a\u2028.png", "U+2028"),
        ("uploads/", "names a folder"),
        ("./", "names a folder"),
        ("uploads/" + "x" * 256, "longer than 255 bytes"),
        ("%252e%252e/x", "'..' segment once percent-decoded"),
    ],
)
def test_a_refusal_is_the_normalizers_and_says_what_to_fix(
    drive: Path, raw: str, says: str
) -> None:
    with pytest.raises(services_paths.DrivePathError) as expected:
        services_paths.normalize_file_path(raw)
    with pytest.raises(PurasError) as caught:
        load_bytes(raw)
    assert str(caught.value) == str(expected.value)
    assert "is refused" in str(caught.value)
    assert says in str(caught.value)


def test_a_leading_drive_folder_is_part_of_the_path(drive: Path) -> None:
    # ``drive/a.png`` names ./drive/drive/a.png, as the drive API reads it.
    (drive / "a.png").write_bytes(PNG)
    with pytest.raises(PurasError, match=r"not found \(looked for \./drive/drive/a\.png\)"):
        load_bytes("drive/a.png")


def test_a_link_leading_outside_stays_refused_after_normalizing(
    drive: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    (drive / "out").symlink_to(tmp_path)
    with pytest.raises(PurasError, match="leads outside the drive"):
        load_bytes("./out//secret.txt")
