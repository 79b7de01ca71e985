"""The bundle zip of a project folder, as ``push`` uploads it (SPEC P4).

The one packer of every client: ``puras push`` and the MCP server's ``push`` tool call
:func:`pack_project`. It needs nothing beyond the standard library, so neither client
depends on a server package for it. The gateway reads what arrives with its own, stricter
reader (``puras_common.manifest``): this side decides what goes in, that side what is
accepted.

* left out at any depth: :data:`EXCLUDED_NAMES` (VCS folders, virtualenvs,
  ``node_modules``, caches, local credentials) and files ending in
  :data:`EXCLUDED_SUFFIXES`;
* a link to a file is stored as that file's content; a link to a folder, a dangling
  link or a special file is refused;
* deterministic: entries sorted by path, fixed timestamps, only the exec bit of each
  mode kept, so the same tree always gives the same bytes;
* refused: a folder without any ``skills/<name>/skill.yaml``.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "EXCLUDED_NAMES",
    "EXCLUDED_SUFFIXES",
    "SKILL_YAML",
    "PackError",
    "PackedBundle",
    "pack_project",
]

EXCLUDED_NAMES: Final = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".DS_Store",
        ".puras",
        # Local credentials must not ride along in a bundle: skills get project secrets.
        ".env",
    }
)
"""File and folder names left out at any depth."""

EXCLUDED_SUFFIXES: Final = (".pyc",)
"""File name endings left out."""

SKILL_YAML: Final = re.compile(r"^skills/[^/]+/skill\.yaml$")
"""Path of a skill's manifest inside a bundle: every folder under ``skills/`` with one."""
_FIXED_DATE: Final = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can store
_CHUNK: Final = 1024 * 1024


class PackError(ValueError):
    """The folder cannot be pushed; ``problems`` lists why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class PackedBundle:
    """A packed project: the zip and what went into it."""

    data: bytes
    files: list[str]
    """Paths inside the zip, sorted."""
    skills: list[str]
    """Names of the ``skills/<name>/skill.yaml`` folders found."""


def pack_project(project_dir: Path) -> PackedBundle:
    """Zips ``project_dir`` the way a deployment expects it, or raises :class:`PackError`."""
    root = Path(project_dir)
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a folder"
        raise PackError([f"{root}: {what}; give the project folder (the one holding skills/)"])
    files: list[tuple[str, Path]] = []
    problems: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        kept = []
        for name in dirnames:
            if name in EXCLUDED_NAMES:
                continue
            if (here / name).is_symlink():
                rel = (here / name).relative_to(root).as_posix()
                problems.append(f"{rel}: is a link to a folder: bundles hold no links; copy it in")
                continue
            kept.append(name)
        dirnames[:] = kept  # prunes the walk
        for name in filenames:
            if name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES):
                continue
            path = here / name
            rel = path.relative_to(root).as_posix()
            try:
                st = path.stat()  # follows a link to its target
            except OSError:
                problems.append(f"{rel}: is a dangling link: fix or remove it")
                continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(f"{rel}: is not a regular file: remove it")
                continue
            files.append((rel, path))
    if problems:
        raise PackError(problems)
    skills = sorted(rel.split("/")[1] for rel, _ in files if SKILL_YAML.match(rel))
    if not skills:
        raise PackError(
            [
                f"{root}: no skills found: expected skills/<name>/skill.yaml in the project "
                "folder (every folder under skills/ with a skill.yaml is a skill)"
            ]
        )
    files.sort()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel, path in files:
            st = path.stat()
            info = zipfile.ZipInfo(rel, date_time=_FIXED_DATE)
            info.create_system = 3  # Unix, so external_attr carries a mode on every OS
            mode = 0o755 if st.st_mode & 0o111 else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = st.st_size  # known up front: zip64 for huge members
            with path.open("rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
    return PackedBundle(data=buf.getvalue(), files=[rel for rel, _ in files], skills=skills)
