"""The local-filesystem drive backend: a private folder per project."""

from __future__ import annotations

import os
from pathlib import Path

from puras_drive.domain.paths import project_drive_dir

__all__ = ["LocalDrive"]


class LocalDrive:
    def __init__(self, root: Path) -> None:
        self.root = root

    def provision(self, project_id: str) -> Path:
        """Create the project's folder (idempotent), private to the service's user."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = project_drive_dir(self.root, project_id)
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
        return path
