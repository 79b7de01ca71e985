"""Zip safety of bundles: validation and extraction (P1).

Packing a project folder (P4) is tested with the packer, in tests/unit/bundle.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from puras_common.manifest import (
    BundleInvalid,
    BundleLimits,
    Problem,
    extract_bundle,
    validate_bundle,
)

SKILL_YAML = "entrypoint: main.py:run\n"
MAIN_PY = "def run(inputs):\n    return inputs\n"
VALID = {"skills/echo/skill.yaml": SKILL_YAML, "skills/echo/main.py": MAIN_PY}


def make_zip(
    files: Mapping[str, str | bytes],
    *,
    modes: dict[str, int] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """A zip written member by member, names kept exactly as given."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo("placeholder", date_time=(2020, 1, 1, 0, 0, 0))
            info.filename = name  # set afterwards: the constructor would cut it at a NUL
            info.compress_type = compression
            info.create_system = 3
            mode = (modes or {}).get(name)
            if mode is not None:
                info.external_attr = mode << 16
            elif name.endswith("/"):
                info.external_attr = (stat.S_IFDIR | 0o755) << 16
            else:
                info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, content)
    return buf.getvalue()


def problems_of(data: bytes, limits: BundleLimits | None = None) -> list[Problem]:
    with pytest.raises(BundleInvalid) as err:
        validate_bundle(data, limits or BundleLimits())
    return err.value.problems


def only_problem(data: bytes, limits: BundleLimits | None = None) -> Problem:
    found = problems_of(data, limits)
    assert len(found) == 1, found
    return found[0]


def test_valid_zip_passes() -> None:
    assert [s.name for s in validate_bundle(make_zip(VALID)).skills] == ["echo"]


# -- the archive as a whole ------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"not a zip at all", b"PK\x03\x04garbage"])
def test_not_a_zip(data: bytes) -> None:
    problem = only_problem(data)
    assert problem.file == "<bundle>"
    assert problem.field is None
    assert "not a zip archive" in problem.message


def test_zip_size_limit() -> None:
    data = make_zip(VALID)
    problem = only_problem(data, BundleLimits(max_zip_bytes=len(data) - 1))
    assert problem.file == "<bundle>"
    assert "the limit is" in problem.message
    validate_bundle(data, BundleLimits(max_zip_bytes=len(data)))


def test_member_count_limit() -> None:
    data = make_zip({**VALID, "README.md": "x"})
    problem = only_problem(data, BundleLimits(max_files=2))
    assert "3 members; the limit is 2" in problem.message
    validate_bundle(data, BundleLimits(max_files=3))


def test_total_uncompressed_limit() -> None:
    data = make_zip({**VALID, "a.txt": "x" * 100, "b.txt": "y" * 100})
    problem = only_problem(data, BundleLimits(max_total_bytes=150))
    assert problem.file == "<bundle>"
    assert "add up to" in problem.message


def test_single_file_limit() -> None:
    data = make_zip({**VALID, "big.bin": b"z" * 1000})
    problem = only_problem(data, BundleLimits(max_file_bytes=999))
    assert problem.file == "big.bin"
    assert "limit for one file" in problem.message


def test_zip_bomb_by_ratio() -> None:
    data = make_zip({**VALID, "bomb.bin": b"\0" * (2 * 1024 * 1024)})
    assert len(data) < 20_000
    problem = only_problem(data)
    assert problem.file == "bomb.bin"
    assert "200:1" in problem.message


def test_small_highly_compressible_files_are_fine() -> None:
    validate_bundle(make_zip({**VALID, "zeros.bin": b"\0" * 100_000}))


def test_ratio_limit_is_configurable() -> None:
    data = make_zip({**VALID, "zeros.bin": b"\0" * 100_000})
    limits = BundleLimits(max_compression_ratio=10, ratio_check_min_bytes=1000)
    assert only_problem(data, limits).file == "zeros.bin"


def test_corrupt_member_is_reported() -> None:
    data = make_zip({**VALID, "data.txt": b"hello world payload"}, compression=zipfile.ZIP_STORED)
    corrupt = data.replace(b"hello world payload", b"hellO world payload")
    problem = only_problem(corrupt)
    assert problem.file == "data.txt"
    assert "cannot be read" in problem.message


# -- member names and types ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("../evil.py", "'..'"),
        ("skills/../../evil.py", "'..'"),
        ("skills/echo/..", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/Windows/x.py", "absolute"),
        ("skills\\echo\\x.py", "backslash"),
        ("skills/echo/a\x00b.py", "control"),
        ("skills/echo/a\nb.py", "control"),
        ("skills//echo.py", "empty"),
        ("skills/" + "x" * 256, "longer than 255"),
    ],
)
def test_unsafe_names_are_refused(name: str, words: str) -> None:
    problem = only_problem(make_zip({**VALID, name: "x"}))
    assert words in problem.message
    assert "\x00" not in problem.file
    assert "\n" not in problem.file


def test_symlink_member_is_refused() -> None:
    data = make_zip(
        {**VALID, "skills/echo/link.py": "/etc/passwd"},
        modes={"skills/echo/link.py": stat.S_IFLNK | 0o777},
    )
    problem = only_problem(data)
    assert problem.file == "skills/echo/link.py"
    assert "symbolic links" in problem.message


def test_special_file_member_is_refused() -> None:
    data = make_zip({**VALID, "fifo": ""}, modes={"fifo": stat.S_IFIFO | 0o644})
    assert "special files" in only_problem(data).message


def test_encrypted_member_is_refused() -> None:
    data = bytearray(make_zip({**VALID, "secret.txt": "x"}))
    # Set the "encrypted" bit in the member's central directory record (what the
    # reader trusts): the record's fixed part is 46 bytes, then the name.
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at + 1)
        if data[at + 46 : at + 46 + len(b"secret.txt")] == b"secret.txt":
            break
    data[at + 8] |= 0x1
    problem = only_problem(bytes(data))
    assert problem.file == "secret.txt"
    assert "encrypted" in problem.message


def test_all_unsafe_members_are_listed_at_once() -> None:
    data = make_zip({**VALID, "../a": "x", "/b": "y", "c\\d": "z"})
    assert [p.file for p in problems_of(data)] == ["../a", "/b", "c\\d"]


def test_duplicate_member_is_refused() -> None:
    data = make_zip({**VALID, "skills/echo/./main.py": "def run(x):\n    return {}\n"})
    problem = only_problem(data)
    assert problem.file == "skills/echo/main.py"
    assert "twice" in problem.message


def test_file_and_folder_clash_is_refused() -> None:
    data = make_zip({**VALID, "lib": "a file", "lib/mod.py": "x = 1\n"})
    problem = only_problem(data)
    assert problem.file == "lib"
    assert "needs it to be a folder" in problem.message


def test_dot_segments_are_harmless() -> None:
    data = make_zip({"./skills/echo/skill.yaml": SKILL_YAML, "./skills/echo/main.py": MAIN_PY})
    assert validate_bundle(data).skills[0].name == "echo"


# -- the root ------------------------------------------------------------------------


def test_single_wrapping_folder_is_the_root() -> None:
    data = make_zip(
        {
            "my-project/": b"",
            "my-project/requirements.txt": "pillow\n",
            "my-project/skills/echo/skill.yaml": SKILL_YAML,
            "my-project/skills/echo/main.py": MAIN_PY,
        }
    )
    out = validate_bundle(data)
    assert [s.name for s in out.skills] == ["echo"]
    assert out.requirements_sha256 is not None


def test_problems_in_a_wrapped_bundle_use_root_relative_paths() -> None:
    data = make_zip({"proj/skills/echo/skill.yaml": SKILL_YAML})
    problem = only_problem(data)
    assert (
        str(problem) == "skills/echo/skill.yaml: entrypoint: file main.py not found in skills/echo/"
    )


def test_macos_junk_is_ignored() -> None:
    data = make_zip(
        {
            "proj/skills/echo/skill.yaml": SKILL_YAML,
            "proj/skills/echo/main.py": MAIN_PY,
            "__MACOSX/proj/skills/echo/._main.py": b"\0\5\26\7",
        }
    )
    assert validate_bundle(data).file_count == 2


def test_no_stripping_when_skills_are_at_the_root() -> None:
    data = make_zip({"skills/echo/skill.yaml": SKILL_YAML, "skills/echo/main.py": MAIN_PY})
    assert validate_bundle(data).skills[0].name == "echo"


def test_two_top_level_folders_are_not_a_wrapper() -> None:
    data = make_zip({"a/skills/echo/skill.yaml": SKILL_YAML, "b/x.txt": "x"})
    assert only_problem(data).message.startswith("bundle has no skills")


# -- extraction ----------------------------------------------------------------------


def test_extract_writes_files_with_modes(tmp_path: Path) -> None:
    data = make_zip(
        {**VALID, "bin/tool.sh": "#!/bin/sh\n", "empty/": b""},
        modes={"bin/tool.sh": stat.S_IFREG | 0o755},
    )
    dest = tmp_path / "deploy" / "d1"
    extract_bundle(data, dest)
    assert (dest / "skills/echo/main.py").read_text() == MAIN_PY
    assert (dest / "empty").is_dir()
    assert stat.S_IMODE((dest / "bin/tool.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "skills/echo/main.py").stat().st_mode) == 0o644
    assert sorted(p.name for p in dest.parent.iterdir()) == ["d1"]


def test_extract_strips_the_wrapping_folder(tmp_path: Path) -> None:
    data = make_zip(
        {"proj/skills/echo/skill.yaml": SKILL_YAML, "proj/skills/echo/main.py": MAIN_PY}
    )
    extract_bundle(data, tmp_path / "d")
    assert (tmp_path / "d/skills/echo/main.py").is_file()
    assert not (tmp_path / "d/proj").exists()


@pytest.mark.parametrize("name", ["../escaped.txt", "/tmp/abs.txt", "a/../../escaped.txt"])
def test_extract_refuses_escaping_names_and_writes_nothing(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "box" / "d"
    with pytest.raises(BundleInvalid):
        extract_bundle(make_zip({**VALID, name: "x"}), dest)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "box").exists() or list((tmp_path / "box").iterdir()) == []


def test_extract_refuses_symlinks(tmp_path: Path) -> None:
    data = make_zip({**VALID, "link": "/etc"}, modes={"link": stat.S_IFLNK | 0o777})
    with pytest.raises(BundleInvalid, match="symbolic links"):
        extract_bundle(data, tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_extract_is_all_or_nothing(tmp_path: Path) -> None:
    data = make_zip({**VALID, "zz.txt": b"hello world payload"}, compression=zipfile.ZIP_STORED)
    corrupt = data.replace(b"hello world payload", b"hellO world payload")
    with pytest.raises(BundleInvalid, match="cannot be read"):
        extract_bundle(corrupt, tmp_path / "d")
    assert list(tmp_path.iterdir()) == []


def test_extract_refuses_an_existing_destination(tmp_path: Path) -> None:
    dest = tmp_path / "d"
    dest.mkdir()
    with pytest.raises(FileExistsError):
        extract_bundle(make_zip(VALID), dest)
    assert list(dest.iterdir()) == []


def test_extract_refuses_a_bomb(tmp_path: Path) -> None:
    data = make_zip({**VALID, "bomb.bin": b"\0" * (2 * 1024 * 1024)})
    with pytest.raises(BundleInvalid, match="200:1"):
        extract_bundle(data, tmp_path / "d")
    assert list(tmp_path.iterdir()) == []


def test_extract_ignores_umask(tmp_path: Path) -> None:
    data = make_zip({**VALID, "run.sh": "x"}, modes={"run.sh": stat.S_IFREG | 0o777})
    old = os.umask(0o077)
    try:
        extract_bundle(data, tmp_path / "d")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "d/run.sh").stat().st_mode) == 0o755
