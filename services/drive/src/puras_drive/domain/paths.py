"""Where a project's drive lives on the local filesystem (pure)."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["project_drive_dir"]

_PROJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def project_drive_dir(root: Path, project_id: str) -> Path:
    """``<root>/<project_id>``; refuses an id that could leave the root."""
    if not _PROJECT_ID.match(project_id):
        raise ValueError(f"not a project id: {project_id!r}")
    return root / project_id
