"""The MCP server's packer agrees with the server side's reference packer (SPEC P4)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from puras_common.manifest import archive as reference
from puras_common.manifest import pack_project as reference_pack
from purasbackend_mcp import packer
from purasbackend_mcp.packer import PackError, pack_project

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / "skills").is_dir())


def entries(data: bytes) -> list[tuple[str, int, int, tuple[int, ...]]]:
    """What a bundle holds: name, content CRC, mode bits and timestamp of every member."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return [(i.filename, i.CRC, i.external_attr >> 16, i.date_time) for i in zf.infolist()]


def test_the_exclusion_lists_are_the_reference_ones() -> None:
    assert packer.EXCLUDED_NAMES == reference.EXCLUDED_NAMES
    assert packer.EXCLUDED_SUFFIXES == reference.EXCLUDED_SUFFIXES


@pytest.mark.parametrize("project", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_pack_to_the_same_entries(project: Path) -> None:
    ours = pack_project(project)
    assert entries(ours.data) == entries(reference_pack(project))
    assert ours.files == [e[0] for e in entries(ours.data)]
    assert ours.skills == sorted(p.name for p in (project / "skills").iterdir())


def test_the_examples_are_there() -> None:
    assert {p.name for p in EXAMPLES} >= {"quickstart", "image-tools"}


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


def test_a_tree_with_everything_to_leave_out(tmp_path: Path) -> None:
    make_tree(tmp_path)
    ours = pack_project(tmp_path)
    assert entries(ours.data) == entries(reference_pack(tmp_path))
    assert ours.files == [
        "data/.gitkeep",
        "lib/helpers.py",
        "linked.txt",
        "requirements.txt",
        "run.sh",
        "skills/echo/main.py",
        "skills/echo/skill.yaml",
    ]
    modes = {name: mode & 0o777 for name, _, mode, _ in entries(ours.data)}
    assert modes["run.sh"] == 0o755
    assert modes["lib/helpers.py"] == 0o644
    with zipfile.ZipFile(io.BytesIO(ours.data)) as zf:
        assert zf.read("linked.txt") == b"pillow\n"  # a link to a file is stored as its content
    # The server accepts what we send.
    assert reference.open_bundle(ours.data).files.keys() == set(ours.files)


def test_packing_is_deterministic(tmp_path: Path) -> None:
    make_tree(tmp_path)
    first = pack_project(tmp_path).data
    os.utime(tmp_path / "lib" / "helpers.py", (0, 0))
    assert pack_project(tmp_path).data == first


def test_a_folder_without_skills_is_refused(tmp_path: Path) -> None:
    (tmp_path / "skills" / "echo").mkdir(parents=True)
    (tmp_path / "skills" / "echo" / "main.py").write_text("")
    (tmp_path / "skill.yaml").write_text("")
    with pytest.raises(PackError, match=r"no skills found: expected skills/<name>/skill\.yaml"):
        pack_project(tmp_path)
    with pytest.raises(reference.BundleInvalid):
        reference_pack(tmp_path)


def test_a_skill_yaml_only_inside_an_excluded_folder_does_not_count(tmp_path: Path) -> None:
    (tmp_path / "node_modules" / "skills" / "x").mkdir(parents=True)
    (tmp_path / "skills" / "__pycache__").mkdir(parents=True)
    (tmp_path / "skills" / "__pycache__" / "skill.yaml").write_text("")
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
    with pytest.raises(reference.BundleInvalid) as ref:
        reference_pack(tmp_path)
    assert sorted(str(p) for p in ref.value.problems) == sorted(info.value.problems)


def test_the_package_imports_nothing_from_the_server_side() -> None:
    import ast
    import sys
    from importlib.metadata import requires

    # What mcp and httpx bring along (anyio, pydantic) may be imported; nothing of Puras.
    allowed = {"purasbackend_mcp", "mcp", "httpx", "anyio", "pydantic"}
    src = ROOT / "mcp" / "src" / "purasbackend_mcp"
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
                assert top in allowed or top in sys.stdlib_module_names, f"{path.name}: {name}"
    declared = {
        r.split(">")[0].split("<")[0].split("=")[0].strip()
        for r in requires("purasbackend-mcp") or []
    }
    assert declared == {"mcp", "httpx"}
