"""The one packer of the CLI and the MCP server: what a bundle holds (SPEC P4).

The server side reads what the packer writes with its own reader; the tests check that
it accepts every bundle packed here, so the two sides cannot drift apart.
"""

from __future__ import annotations

import ast
import io
import os
import stat
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from puras_bundle import EXCLUDED_NAMES, PackError, pack_project
from puras_common.manifest import extract_bundle, validate_bundle
from puras_common.manifest.archive import open_bundle

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / "skills").is_dir())
SKILL_YAML = "entrypoint: main.py:run\n"
MAIN_PY = "def run(inputs):\n    return inputs\n"


def entries(data: bytes) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """What a bundle holds: name, content CRC, mode bits and timestamp of every member."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, i.CRC, i.external_attr >> 16, i.date_time) for i in zf.infolist()]


def write_project(root: Path) -> None:
    (root / "skills/echo").mkdir(parents=True)
    (root / "skills/echo/skill.yaml").write_text(SKILL_YAML)
    (root / "skills/echo/main.py").write_text(MAIN_PY)
    (root / "requirements.txt").write_text("pillow\n")


def make_tree(root: Path) -> None:
    files = {
        "skills/echo/skill.yaml": "description: x\nentrypoint: main.py:run\n",
        "skills/echo/main.py": "def run(inputs):\n    return inputs\n",
        "skills/echo/__pycache__/main.cpython-311.pyc": "bytecode",
        "skills/echo/stale.pyc": "bytecode",
        "lib/helpers.py": "X = 1\n",
        "requirements.txt": "pillow\n",
        ".git/HEAD": "ref: refs/heads/main\n",
        ".venv/bin/python": "",
        "venv/lib/x.py": "",
        "node_modules/left-pad/index.js": "",
        ".mypy_cache/x": "",
        ".pytest_cache/x": "",
        ".ruff_cache/x": "",
        ".puras/dev.env": "PURAS_API_KEY=secret",
        ".env": "TOKEN=secret",
        "sub/.env": "TOKEN=secret",
        ".DS_Store": "",
        ".hg/x": "",
        ".svn/x": "",
        "data/.gitkeep": "",
        "run.sh": "#!/bin/sh\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    os.chmod(root / "run.sh", 0o755)  # noqa: S103 - an executable file is what is tested
    (root / "linked.txt").symlink_to(root / "requirements.txt")


def test_the_examples_are_there() -> None:
    assert {p.name for p in EXAMPLES} >= {"quickstart", "image-tools"}


@pytest.mark.parametrize("project", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_pack_into_bundles_the_server_accepts(project: Path) -> None:
    packed = pack_project(project)
    assert packed.files == [e[0] for e in entries(packed.data)]
    assert packed.skills == sorted(p.name for p in (project / "skills").iterdir())
    assert [s.name for s in validate_bundle(packed.data).skills] == packed.skills


def test_a_tree_with_everything_to_leave_out(tmp_path: Path) -> None:
    make_tree(tmp_path)
    packed = pack_project(tmp_path)
    assert packed.files == [
        "data/.gitkeep",
        "lib/helpers.py",
        "linked.txt",
        "requirements.txt",
        "run.sh",
        "skills/echo/main.py",
        "skills/echo/skill.yaml",
    ]
    assert packed.skills == ["echo"]
    modes = {name: mode & 0o777 for name, _, mode, _ in entries(packed.data)}
    assert modes["run.sh"] == 0o755
    assert modes["lib/helpers.py"] == 0o644
    with zipfile.ZipFile(io.BytesIO(packed.data)) as zf:
        assert zf.read("linked.txt") == b"pillow\n"  # a link to a file is stored as its content
    assert open_bundle(packed.data).files.keys() == set(packed.files)


def test_excluded_names_at_any_depth_and_pyc_files_are_left_out(tmp_path: Path) -> None:
    write_project(tmp_path)
    for name in sorted(EXCLUDED_NAMES):
        (tmp_path / name).mkdir()
        (tmp_path / name / "inner.txt").write_text("x")
        (tmp_path / "skills/echo" / name).mkdir()
    (tmp_path / "skills/echo/.DS_Store").rmdir()
    (tmp_path / "skills/echo/.DS_Store").write_bytes(b"\0")
    (tmp_path / "skills/echo/__pycache__/main.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "stray.pyc").write_bytes(b"\0")
    (tmp_path / "keep.py").write_text("x = 1\n")
    (tmp_path / ".env.example").write_text("A=1\n")
    assert pack_project(tmp_path).files == [
        ".env.example",
        "keep.py",
        "requirements.txt",
        "skills/echo/main.py",
        "skills/echo/skill.yaml",
    ]


def test_the_excluded_names_are_the_spec_list() -> None:
    assert {
        ".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__",
        ".mypy_cache", ".pytest_cache", ".ruff_cache", ".DS_Store", ".puras", ".env",
    } == EXCLUDED_NAMES  # fmt: skip


def test_packing_is_deterministic(tmp_path: Path) -> None:
    write_project(tmp_path / "a")
    first = pack_project(tmp_path / "a").data
    os.utime(tmp_path / "a/skills/echo/main.py", (1_000_000, 1_000_000))
    assert pack_project(tmp_path / "a").data == first
    # The same tree written elsewhere, in another order, at another time.
    (tmp_path / "b").mkdir()
    (tmp_path / "b/requirements.txt").write_text("pillow\n")
    (tmp_path / "b/skills/echo").mkdir(parents=True)
    (tmp_path / "b/skills/echo/main.py").write_text(MAIN_PY)
    (tmp_path / "b/skills/echo/skill.yaml").write_text(SKILL_YAML)
    assert pack_project(tmp_path / "b").data == first


def test_entries_are_sorted_and_dated_1980(tmp_path: Path) -> None:
    write_project(tmp_path)
    with zipfile.ZipFile(io.BytesIO(pack_project(tmp_path).data)) as zf:
        names = zf.namelist()
        assert names == ["requirements.txt", "skills/echo/main.py", "skills/echo/skill.yaml"]
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_only_the_exec_bit_of_a_mode_is_kept(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / "run.sh").write_text("#!/bin/sh\n")
    (tmp_path / "run.sh").chmod(0o750)
    (tmp_path / "skills/echo/main.py").chmod(0o600)
    modes = {name: mode for name, _, mode, _ in entries(pack_project(tmp_path).data)}
    assert modes["run.sh"] == stat.S_IFREG | 0o755
    assert modes["skills/echo/main.py"] == stat.S_IFREG | 0o644


def test_a_linked_file_from_outside_is_stored_as_its_content(tmp_path: Path) -> None:
    write_project(tmp_path / "p")
    (tmp_path / "shared.py").write_text("SHARED = 1\n")
    (tmp_path / "p/skills/echo/shared.py").symlink_to(tmp_path / "shared.py")
    data = pack_project(tmp_path / "p").data
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        info = zf.getinfo("skills/echo/shared.py")
        assert stat.S_ISREG(info.external_attr >> 16)
        assert zf.read(info) == b"SHARED = 1\n"
    validate_bundle(data)


def test_a_packed_project_extracts_to_the_same_tree(tmp_path: Path) -> None:
    write_project(tmp_path / "p")
    extract_bundle(pack_project(tmp_path / "p").data, tmp_path / "out")
    files = sorted(
        p.relative_to(tmp_path / "out").as_posix()
        for p in (tmp_path / "out").rglob("*")
        if p.is_file()
    )
    assert files == ["requirements.txt", "skills/echo/main.py", "skills/echo/skill.yaml"]
    assert (tmp_path / "out/skills/echo/main.py").read_text() == MAIN_PY


def test_a_folder_without_skills_is_refused(tmp_path: Path) -> None:
    (tmp_path / "skills" / "echo").mkdir(parents=True)
    (tmp_path / "skills" / "echo" / "main.py").write_text("")
    (tmp_path / "skill.yaml").write_text("")
    with pytest.raises(PackError, match=r"no skills found: expected skills/<name>/skill\.yaml"):
        pack_project(tmp_path)


def test_a_skill_yaml_only_inside_an_excluded_folder_does_not_count(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "skills" / "x").mkdir(parents=True)
    (tmp_path / "node_modules" / "skills" / "x" / "skill.yaml").write_text(SKILL_YAML)
    (tmp_path / "skills" / "__pycache__").mkdir(parents=True)
    (tmp_path / "skills" / "__pycache__" / "skill.yaml").write_text("")
    (tmp_path / "skills" / ".git").mkdir(parents=True)
    (tmp_path / "skills" / ".git" / "skill.yaml").write_text(SKILL_YAML)
    with pytest.raises(PackError, match="no skills found"):
        pack_project(tmp_path)


def test_a_missing_folder_or_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PackError, match="does not exist"):
        pack_project(tmp_path / "nope")
    (tmp_path / "f").write_text("")
    with pytest.raises(PackError, match="is not a folder"):
        pack_project(tmp_path / "f")


def test_links_to_folders_and_dangling_links_are_refused(tmp_path: Path) -> None:
    (tmp_path / "skills" / "echo").mkdir(parents=True)
    (tmp_path / "skills" / "echo" / "skill.yaml").write_text("")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "skills" / "linked").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing")
    with pytest.raises(PackError) as info:
        pack_project(tmp_path)
    assert sorted(info.value.problems) == [
        "gone.txt: is a dangling link: fix or remove it",
        "skills/linked: is a link to a folder: bundles hold no links; copy it in",
    ]


def test_the_packer_needs_only_the_standard_library() -> None:
    src = ROOT / "libs" / "bundle" / "src" / "puras_bundle"
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top == "puras_bundle" or top in sys.stdlib_module_names, (path, name)
    project = tomllib.loads((ROOT / "libs" / "bundle" / "pyproject.toml").read_text())
    assert project["project"]["dependencies"] == []
