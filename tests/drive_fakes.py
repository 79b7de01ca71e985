"""In-memory implementation of the drive's port (``puras_drive.app.ports``), held to the
local-filesystem adapter's behaviour by ``tests/unit/drive/test_drive_port.py``."""

from __future__ import annotations

from pathlib import Path

from puras_drive.domain.paths import project_drive_dir

__all__ = ["FakeDriveStore"]

_NOWHERE = Path("/memory")
"""Only handed to the pure path rule: nothing is created there."""


class FakeDriveStore:
    def __init__(self) -> None:
        self.drives: dict[str, str] = {}
        self.provisions = 0
        """Calls of ``provision`` (a handler that looks first makes fewer)."""

    async def provision(self, project_id: str) -> str:
        where = str(project_drive_dir(_NOWHERE, project_id))  # the same id rule as on disk
        self.provisions += 1
        return self.drives.setdefault(project_id, where)

    async def is_provisioned(self, project_id: str) -> bool:
        project_drive_dir(_NOWHERE, project_id)
        return project_id in self.drives
