"""In-memory implementations of the drive's ports (``puras_drive.app.ports``): the store,
held to the local-filesystem adapter's behaviour by ``tests/unit/drive/test_drive_port.py``;
the log, the file index and the projection watch, folding by ``domain.files``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from puras_common.events.base import Envelope
from puras_common.events.types import DriveEvent
from puras_common.projection.base import RecordedEvent
from puras_drive.domain.files import DriveFile, FileKey, apply
from puras_drive.domain.paths import project_drive_dir

__all__ = ["FakeDriveLog", "FakeDriveStore", "FakeFileIndex", "FakeWatch"]

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


class FakeDriveLog:
    """The drive's log subject in memory: events are folded into ``table`` (by the pure
    fold the projection applies) the moment they are appended, so ``FakeFileIndex`` and
    ``FakeWatch`` need no wait."""

    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self.table: dict[FileKey, DriveFile] = {}

    async def append(self, project_id: str, event: DriveEvent, *, event_id: str) -> int:
        seq = len(self.events) + 1
        env = Envelope(
            id=event_id,
            type=event.type,
            v=1,
            at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=seq),
            project_id=project_id,
            aggregate_id=project_id,
        )
        rec = RecordedEvent(
            seq=seq, subject=f"ev.{project_id}.drive.{project_id}", envelope=env, event=event
        )
        self.events.append(rec)
        apply(self.table, rec)
        return seq

    async def last_seq(self, project_id: str) -> int:
        return max((r.seq for r in self.events if r.envelope.project_id == project_id), default=0)


class FakeFileIndex:
    def __init__(self, log: FakeDriveLog) -> None:
        self._log = log

    async def get(self, project_id: str, path: str) -> DriveFile | None:
        return self._log.table.get((project_id, path))

    async def children(self, project_id: str, prefix: str) -> tuple[list[str], list[DriveFile]]:
        folders: set[str] = set()
        files = []
        for (pid, path), row in self._log.table.items():
            if pid != project_id or not path.startswith(prefix):
                continue
            head, sep, _ = path[len(prefix) :].partition("/")
            if sep:
                folders.add(head)
            else:
                files.append(row)
        return sorted(folders), files


class FakeWatch:
    def __init__(self) -> None:
        self.waited: list[int] = []

    async def wait_for(self, seq: int, timeout: float) -> bool:
        self.waited.append(seq)
        return True
