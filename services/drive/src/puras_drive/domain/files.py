"""The drive's file table, as a fold of the project's drive events (pure).

One row per file a project's drive holds, keyed by ``(project_id, path)``:

* ``drive.file_written`` replaces the row (size, digest, type, and the origin of the
  latest writer: D7 names who made the file as it is now); ``created_at`` is the first
  write's time since the file last did not exist, ``updated_at`` the latest write's;
* ``drive.files_deleted`` removes its ``paths``, or every row under ``prefix`` (``""``:
  the whole drive).

Every change carries the sequence of its event and only touches rows older than it, so
applying an event again (a replay, a quarantined event retried late) changes nothing.
The Postgres projection (``adapters/projection.py``) applies the same :func:`change_for`
with the same rule; :func:`apply` is the in-memory form the unit tests hold it to.

A path that is not canonical cannot have come from the drive's writers: it is refused
(``DrivePathError``, a ``ValueError``), and the projection quarantines its event.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from puras_common.drive_paths import DrivePathError, normalize_file_path, normalize_prefix
from puras_common.events.types import DriveFilesDeleted, DriveFileWritten
from puras_common.projection.base import RecordedEvent

__all__ = ["DeleteFiles", "DriveFile", "FileKey", "WriteFile", "apply", "change_for"]

FileKey = tuple[str, str]
"""``(project_id, path)``."""


@dataclass(frozen=True, slots=True)
class DriveFile:
    """One row of ``drive_files``."""

    project_id: str
    path: str
    bytes: int
    sha256: str
    content_type: str
    job_id: str | None
    skill: str | None
    tool: str | None
    created_at: datetime
    updated_at: datetime
    seq: int

    @property
    def key(self) -> FileKey:
        return (self.project_id, self.path)


@dataclass(frozen=True, slots=True)
class WriteFile:
    row: DriveFile
    """The row as it is if no older one exists (an older one keeps its ``created_at``)."""


@dataclass(frozen=True, slots=True)
class DeleteFiles:
    project_id: str
    paths: tuple[str, ...]
    prefix: str | None
    """A canonical folder prefix (``""`` the root, else ending in ``/``), or ``None``."""
    seq: int


Change = WriteFile | DeleteFiles


def change_for(rec: RecordedEvent) -> Change | None:
    """What one event does to the table (``None``: nothing, another aggregate's event)."""
    event, env = rec.event, rec.envelope
    if isinstance(event, DriveFileWritten):
        origin = event.origin
        return WriteFile(
            DriveFile(
                project_id=env.project_id,
                path=_canonical_file(event.path),
                bytes=event.bytes,
                sha256=event.sha256,
                content_type=event.content_type,
                job_id=origin.job_id if origin else None,
                skill=origin.skill if origin else None,
                tool=origin.tool if origin else None,
                created_at=env.at,
                updated_at=env.at,
                seq=rec.seq,
            )
        )
    if isinstance(event, DriveFilesDeleted):
        prefix = None if event.prefix is None else _canonical_prefix(event.prefix)
        return DeleteFiles(
            project_id=env.project_id,
            paths=tuple(_canonical_file(p) for p in event.paths),
            prefix=prefix,
            seq=rec.seq,
        )
    return None


def apply(table: dict[FileKey, DriveFile], rec: RecordedEvent) -> None:
    """Fold one event into ``table`` in place."""
    change = change_for(rec)
    if isinstance(change, WriteFile):
        new = change.row
        old = table.get(new.key)
        if old is None:
            table[new.key] = new
        elif old.seq < new.seq:
            table[new.key] = replace(new, created_at=old.created_at)
    elif isinstance(change, DeleteFiles):
        for key, row in list(table.items()):
            if (
                row.project_id == change.project_id
                and row.seq < change.seq
                and _deleted(row, change)
            ):
                del table[key]


def _deleted(row: DriveFile, change: DeleteFiles) -> bool:
    if row.path in change.paths:
        return True
    return change.prefix is not None and row.path.startswith(change.prefix)


def _canonical_file(path: str) -> str:
    if normalize_file_path(path) != path:
        raise DrivePathError(path, "a drive event must carry a canonical path")
    return path


def _canonical_prefix(prefix: str) -> str:
    if normalize_prefix(prefix) != prefix:
        raise DrivePathError(prefix, "a drive event must carry a canonical folder prefix")
    return prefix
