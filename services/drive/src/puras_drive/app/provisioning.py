"""Every project has a drive the moment it exists, so jobs and the drive API find it."""

from __future__ import annotations

from puras_common.logging import get_logger
from puras_drive.app.ports import DriveStore

__all__ = ["Provisioner"]

log = get_logger(__name__)


class Provisioner:
    def __init__(self, store: DriveStore) -> None:
        self._store = store

    async def project_created(self, project_id: str) -> None:
        """``project.created``: give the project its drive (the log is replayed at every
        start, so most projects have theirs already)."""
        if await self._store.is_provisioned(project_id):
            return
        where = await self._store.provision(project_id)
        log.info("drive provisioned", project_id=project_id, path=where)
