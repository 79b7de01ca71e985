"""What the drive's handlers need from the world, as protocols.

:class:`DriveStore` gives each project its drive (the local-filesystem adapter in
``puras_drive.adapters.local_fs``; an in-memory one in the unit tests). :class:`DriveStorage`
holds the drive's files, with two backends: the local filesystem
(``adapters.local_fs_storage``, the embedded default) and S3-compatible object storage
(``adapters.s3_storage``); one contract suite runs against both
(``tests/integration/drive/test_storage_contract.py``).

The HTTP API also needs the log (:class:`DriveLog`: it appends the drive's events), the
file table folded from them (:class:`FileIndex`, the Postgres projection) and a way to
wait until that table shows a sequence (:class:`ProjectionWatch`): an upload answers
once a list would show it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from puras_common.events.types import DriveEvent
from puras_drive.domain.files import DriveFile
from puras_drive.domain.objects import FileInfo, FolderInfo, ObjectInfo, ObjectStream, StoredObject

__all__ = ["DriveLog", "DriveStorage", "DriveStore", "FileIndex", "ProjectionWatch"]


class DriveStore(Protocol):
    """Where projects' drives live: one private drive per project."""

    async def provision(self, project_id: str) -> str:
        """Make sure the project has its drive (repeating it changes nothing); returns
        where the drive is, for operators. Raises ``ValueError`` for an id that cannot
        name a drive."""
        ...

    async def is_provisioned(self, project_id: str) -> bool:
        """Whether the project has its drive (``ValueError`` as for :meth:`provision`)."""
        ...


class DriveStorage(Protocol):
    """The files of every project's drive, each project confined to its own prefix.

    Every method takes the project's id (``ValueError`` for one that cannot name a
    drive) and a drive path, normalized here again by ``puras_common.drive_paths``
    (``DrivePathError`` for one that may not be used): a canonical path passes
    unchanged. Files are addressed by path, folders by prefix (``""``: the drive's root,
    ``"a/b"`` and ``"a/b/"`` alike). Refusals are ``domain.objects.DriveStorageError``s.
    """

    async def put(
        self,
        project_id: str,
        path: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Write ``chunks`` as the file at ``path``, replacing any file there, without
        holding the whole file in memory. The file appears complete or not at all: on
        any error (``DriveTooLarge`` past ``max_bytes``, ``DriveConflict`` where a folder
        has that name or an ancestor is a file, a failing source) nothing is left."""
        ...

    def open(self, project_id: str, path: str) -> AbstractAsyncContextManager[ObjectStream]:
        """The file at ``path`` to read (``DriveNotFound`` if there is none); closed when
        the context ends."""
        ...

    async def stat(self, project_id: str, path: str) -> ObjectInfo | None:
        """The file at ``path``, or ``None`` if there is none (a folder is not a file)."""
        ...

    async def list_children(self, project_id: str, prefix: str) -> list[FileInfo | FolderInfo]:
        """The folders and files directly in the folder ``prefix``, by name (empty for a
        folder that does not exist)."""
        ...

    async def delete_file(self, project_id: str, path: str) -> bool:
        """Remove the file at ``path``; whether there was one (a folder is left alone)."""
        ...

    async def delete_prefix(self, project_id: str, prefix: str) -> int:
        """Remove every file under the folder ``prefix``, recursively; how many. The
        root (``""``) empties the drive and keeps it."""
        ...

    def iter_files(self, project_id: str, prefix: str) -> AsyncIterator[FileInfo]:
        """Every file under the folder ``prefix``, recursively, in path order (code
        point order, which is the bucket's UTF-8 byte order)."""
        ...


class DriveLog(Protocol):
    """The project's drive subject of the event log (``ev.<project>.drive.<project>``)."""

    async def append(self, project_id: str, event: DriveEvent, *, event_id: str) -> int:
        """Store the event (a retry with the same id stores it once); its sequence."""
        ...

    async def last_seq(self, project_id: str) -> int:
        """Sequence of the project's latest drive event (0: none yet)."""
        ...


class FileIndex(Protocol):
    """The file table (``drive_files``), as the projection last committed it."""

    async def get(self, project_id: str, path: str) -> DriveFile | None: ...

    async def children(self, project_id: str, prefix: str) -> tuple[list[str], list[DriveFile]]:
        """Names of the folders directly in ``prefix`` (canonical, ``""`` or ending in
        ``/``), and the files directly in it."""
        ...


class ProjectionWatch(Protocol):
    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait (bounded) until the file table has applied the log up to ``seq``;
        whether it has."""
        ...
