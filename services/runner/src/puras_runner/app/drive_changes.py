"""Files a job wrote or deleted in its drive, announced before its end (D7, D8).

Jobs write their drive directly (skill code, ``bash``, user tools: ``./drive/`` is the
project's folder), so the drive's log learns of it from the runner: the folder is scanned
just before the job's process starts and again once the job's function or agent loop has
returned, before its terminal event — so a file a job wrote is listed, with its origin,
when the job is ``succeeded``. A small drive is scanned on the event loop (microseconds),
a large one in a thread (``adapters.drive_files``). Files the runner
announced itself (a media output) are not announced twice.

Two jobs of one project running at once both see each other's changes in their scans;
each file is then announced by both, and the later announcement names the origin.
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Sequence
from typing import Protocol

from puras_common.events.types import DriveOrigin
from puras_common.logging import get_logger
from puras_runner.app.attempt import Attempt
from puras_runner.domain.drive_changes import Fingerprint, diff, tool_at

__all__ = ["DriveChanges", "DriveFacts", "DriveScanner", "DriveSync"]

log = get_logger(__name__)


class DriveScanner(Protocol):
    async def scan(self, project_id: str) -> dict[str, Fingerprint]:
        """Every file of the project's drive folder (raises when it cannot say)."""
        ...


class DriveFacts(Protocol):
    async def written(
        self,
        attempt: Attempt,
        path: str,
        *,
        size: int,
        content_type: str,
        origin: DriveOrigin,
    ) -> None: ...

    async def deleted(
        self, attempt: Attempt, paths: Sequence[str], *, origin: DriveOrigin
    ) -> None: ...


class DriveSync(Protocol):
    """The bucket behind the drive folder (the S3 backend; ``adapters.drive_sync``)."""

    async def pull(self, project_id: str) -> int: ...

    async def push(
        self, project_id: str, written: Sequence[str], deleted: Sequence[str]
    ) -> None: ...


class DriveChanges:
    def __init__(
        self, scanner: DriveScanner, facts: DriveFacts, sync: DriveSync | None = None
    ) -> None:
        self._scanner = scanner
        self._facts = facts
        self._sync = sync

    @property
    def syncs(self) -> bool:
        """Whether :meth:`prepare` has anything to do (the S3 backend)."""
        return self._sync is not None

    async def prepare(self, attempt: Attempt) -> None:
        """Before the job runs: with the S3 backend, its folder brought up to the bucket
        (raises: the job cannot see its drive)."""
        if self._sync is not None:
            await self._sync.pull(attempt.job.project_id)

    async def begin(self, attempt: Attempt) -> dict[str, Fingerprint] | None:
        """The drive as the job finds it, scanned before it starts (``None``: the scan
        failed; the job runs, its changes are not announced). Before, not while it
        starts: a file the job deleted in its first millisecond would be missed."""
        attempt.drive_since_ns = time.time_ns()
        try:
            return await self._scanner.scan(attempt.job.project_id)
        except Exception as exc:
            log.warning("drive of the job not scanned", error=str(exc))
            return None

    async def finish(self, attempt: Attempt, start: dict[str, Fingerprint]) -> None:
        """Announce what changed since :meth:`begin`. Never raises: the job's outcome is
        recorded whatever happens here (a failed scan is logged)."""
        job = attempt.job
        try:
            end = await self._scanner.scan(job.project_id)
        except Exception as exc:
            log.warning("drive changes of the job not announced", error=str(exc))
            return
        changes = diff(start, end, since_ns=attempt.drive_since_ns)
        try:
            if self._sync is not None:
                # In the bucket before the job's end: readable through the API then.
                await self._sync.push(
                    job.project_id, [p for p, _ in changes.written], changes.deleted
                )
            for path, fp in changes.written:
                if path in attempt.announced:
                    continue
                await self._facts.written(
                    attempt,
                    path,
                    size=fp.size,
                    content_type=mimetypes.guess_type(path)[0] or "application/octet-stream",
                    origin=DriveOrigin(
                        job_id=job.job_id,
                        skill=job.skill,
                        tool=tool_at(fp.mtime_ns, attempt.tool_windows),
                    ),
                )
            if changes.deleted:
                await self._facts.deleted(
                    attempt,
                    changes.deleted,
                    origin=DriveOrigin(job_id=job.job_id, skill=job.skill, tool=None),
                )
        except Exception as exc:
            log.warning("drive changes of the job not announced", error=str(exc))
