"""The local-filesystem drive backend: a private folder per project."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from puras_drive.domain.paths import project_drive_dir

__all__ = ["LocalDrive"]


class LocalDrive:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def provision(self, project_id: str) -> str:
        # Filesystem calls can block (a network mount): off the event loop.
        return str(await asyncio.to_thread(self._provision, project_id))

    async def is_provisioned(self, project_id: str) -> bool:
        return await asyncio.to_thread(project_drive_dir(self.root, project_id).is_dir)

    def _provision(self, project_id: str) -> Path:
        """Create the project's folder (idempotent), private to the service's user."""
        path = project_drive_dir(self.root, project_id)
        self.root.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
        return path
