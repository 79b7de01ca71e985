"""The runner's side of a project's drive folder: what it writes there (a media output),
what it scans there (what a job changed), and the facts it records in the drive's log.

A file the runner writes goes into the project's drive folder (``./drive/`` of the job,
:mod:`puras_runner.adapters.drive_writer`), owned by the project's uid so its jobs can
change it; ``drive.file_written`` / ``drive.files_deleted`` name the job, its skill and
the tool (D7), and are what the drive's listing and origin fold.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from puras_common.bus import Bus
from puras_common.events.ids import drive_delete_id, drive_write_id
from puras_common.events.subjects import AGG_DRIVE
from puras_common.events.types import DriveFilesDeleted, DriveFileWritten, DriveOrigin
from puras_runner.adapters.drive_scan import ScanOverBudget, scan_drive
from puras_runner.adapters.drive_writer import write_drive_file
from puras_runner.adapters.sandbox import Sandbox
from puras_runner.app.attempt import Attempt
from puras_runner.domain.drive_changes import Fingerprint

__all__ = ["INLINE_SCAN_ENTRIES", "DriveFiles"]

INLINE_SCAN_ENTRIES: Final = 256
"""Entries a scan may meet on the event loop. A drive that small is scanned in tens of
microseconds, far less than a hop to a worker thread costs on a busy machine (the GIL
handed over and back); a larger one is scanned in a thread, so a big drive never stalls
the other jobs' events."""


class DriveFiles:
    def __init__(self, bus: Bus, drive_root: Path, sandbox: Sandbox | None) -> None:
        self._bus = bus
        self._root = drive_root
        self._sandbox = sandbox
        self._large: set[str] = set()
        """Projects whose last scan was past :data:`INLINE_SCAN_ENTRIES` (scanned in a
        thread straight away)."""

    def _folder(self, project: str) -> tuple[Path, int | None]:
        sandbox = self._sandbox
        if sandbox is not None:
            return sandbox.project_drive(project), sandbox.uid_for(project)
        return self._root / project, None

    async def save(self, attempt: Attempt, path: str, source: Path) -> int:
        drive, uid = await asyncio.to_thread(self._folder, attempt.job.project_id)
        return await asyncio.to_thread(write_drive_file, drive, path, source, uid=uid)

    async def scan(self, project_id: str) -> dict[str, Fingerprint]:
        drive = os.path.join(self._root, project_id)
        if project_id not in self._large:
            try:
                found = scan_drive(drive, budget=INLINE_SCAN_ENTRIES)
            except ScanOverBudget:
                self._large.add(project_id)
            else:
                return found
        found = await asyncio.to_thread(scan_drive, drive)
        if len(found) <= INLINE_SCAN_ENTRIES // 2:
            # Shrunk well below the bound (files deleted): back on the loop.
            self._large.discard(project_id)
        return found

    async def written(
        self,
        attempt: Attempt,
        path: str,
        *,
        size: int,
        content_type: str,
        origin: DriveOrigin,
    ) -> None:
        project = attempt.job.project_id
        await self._bus.append(
            DriveFileWritten(
                path=path, bytes=size, sha256="", content_type=content_type, origin=origin
            ),
            project_id=project,
            aggregate=AGG_DRIVE,
            aggregate_id=project,
            event_id=drive_write_id(uuid.uuid4().hex),
            correlation_id=attempt.job.job_id,
        )

    async def deleted(self, attempt: Attempt, paths: Sequence[str], *, origin: DriveOrigin) -> None:
        project = attempt.job.project_id
        # One event per 1,000 paths: an event must fit a NATS message.
        for i in range(0, len(paths), 1000):
            chunk = list(paths[i : i + 1000])
            await self._bus.append(
                DriveFilesDeleted(paths=chunk, deleted=len(chunk), origin=origin),
                project_id=project,
                aggregate=AGG_DRIVE,
                aggregate_id=project,
                event_id=drive_delete_id(uuid.uuid4().hex),
                correlation_id=attempt.job.job_id,
            )
