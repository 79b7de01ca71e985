"""The drive API's use cases (SPEC D2-D7), for one project at a time.

The project always comes from the caller (the gateway's trusted header, or a verified
signature) and every path goes through ``puras_common.drive_paths``; storage applies both
again. Writes (upload, delete) change storage, append the matching drive event and
answer once the file table shows it, so a list right after shows what was just done.
Reads of the table (list, origin) first wait, bounded, for the project's latest drive
event, so files a job wrote (its events are appended when it writes them) are shown.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

from puras_common.drive_paths import DrivePathError, normalize_file_path, normalize_path
from puras_common.events.ids import drive_delete_id, drive_write_id
from puras_common.events.types import DriveFilesDeleted, DriveFileWritten
from puras_common.ids import new_id
from puras_common.logging import get_logger
from puras_drive.app.ports import DriveLog, DriveStorage, FileIndex, ProjectionWatch
from puras_drive.app.zip_stream import zip_files
from puras_drive.domain.errors import DriveApiError
from puras_drive.domain.files import DriveFile
from puras_drive.domain.objects import (
    DriveConflict,
    DriveLinkRefused,
    DriveNotFound,
    DriveStorageError,
    DriveTooLarge,
    ObjectStream,
)
from puras_drive.domain.signing import file_url, link_problem
from puras_drive.domain.uploads import upload_path

__all__ = ["DriveService", "Limits", "storage_error"]

log = get_logger(__name__)

ZIP_ROOT_OF_DRIVE = "drive"
"""The zip's root folder when the whole drive is zipped."""


class Limits:
    """The API's limits and waits (from the settings)."""

    def __init__(
        self,
        *,
        max_upload_bytes: int,
        sign_ttl_s: int,
        max_sign_ttl_s: int,
        share_ttl_s: int,
        read_your_writes_s: float,
        list_sync_s: float,
    ) -> None:
        self.max_upload_bytes = max_upload_bytes
        self.sign_ttl_s = sign_ttl_s
        self.max_sign_ttl_s = max_sign_ttl_s
        self.share_ttl_s = share_ttl_s
        self.read_your_writes_s = read_your_writes_s
        self.list_sync_s = list_sync_s


def storage_error(exc: DriveStorageError) -> DriveApiError:
    """The HTTP refusal of a storage refusal."""
    if isinstance(exc, DriveTooLarge):
        return DriveApiError.too_large(str(exc))
    if isinstance(exc, DriveNotFound):
        return DriveApiError.not_found(str(exc))
    if isinstance(exc, DriveConflict):
        return DriveApiError.conflict(str(exc))
    if isinstance(exc, DriveLinkRefused):
        return DriveApiError.bad_request(str(exc), code="invalid_path")
    return DriveApiError.bad_request(str(exc))


def path_error(exc: DrivePathError) -> DriveApiError:
    return DriveApiError.bad_request(str(exc), code="invalid_path")


class DriveService:
    def __init__(
        self,
        *,
        storage: DriveStorage,
        log: DriveLog,
        index: FileIndex,
        watch: ProjectionWatch,
        signing_secret: bytes,
        limits: Limits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._storage = storage
        self._log = log
        self._index = index
        self._watch = watch
        self._secret = signing_secret
        self.limits = limits
        self._clock = clock

    # -- D2 upload ---------------------------------------------------------------------

    def upload_target(self, path: str | None, filename: str | None) -> str:
        """Where an upload with this ``path`` field and file name goes (400 if nowhere)."""
        try:
            return upload_path(path, filename, new_id())
        except DrivePathError as exc:
            raise path_error(exc) from exc

    async def upload(
        self,
        project_id: str,
        path: str,
        chunks: AsyncIterable[bytes],
        public_base: str,
    ) -> dict[str, Any]:
        try:
            stored = await self._storage.put(
                project_id, path, chunks, max_bytes=self.limits.max_upload_bytes
            )
        except DrivePathError as exc:
            raise path_error(exc) from exc
        except DriveStorageError as exc:
            raise storage_error(exc) from exc
        seq = await self._log.append(
            project_id,
            DriveFileWritten(
                path=stored.path,
                bytes=stored.size,
                sha256=stored.sha256,
                content_type=stored.content_type,
                origin=None,
            ),
            event_id=drive_write_id(new_id()),
        )
        await self._settle(seq)
        link = self._link(project_id, stored.path, self.limits.sign_ttl_s, public_base)
        return {
            "drive_path": stored.path,
            "full_path": f"{project_id}/{stored.path}",
            "signed_url": link["url"],
            "bytes": stored.size,
            "content_type": stored.content_type,
        }

    # -- D3 list -----------------------------------------------------------------------

    async def list(self, project_id: str, prefix: str | None) -> dict[str, Any]:
        try:
            canonical = normalize_path(prefix or "").prefix
        except DrivePathError as exc:
            raise path_error(exc) from exc
        await self._catch_up(project_id)
        folders, files = await self._index.children(project_id, canonical)
        return {
            "prefix": canonical,
            "folders": [
                {"name": name, "path": f"{canonical}{name}/"} for name in sorted(set(folders))
            ],
            "files": [
                {
                    "name": f.path.rsplit("/", 1)[-1],
                    "path": f.path,
                    "bytes": f.bytes,
                    "content_type": f.content_type,
                    "created_at": _iso(f.created_at),
                    "updated_at": _iso(f.updated_at),
                }
                for f in sorted(files, key=lambda f: f.path)
            ],
        }

    # -- D4 sign and share ---------------------------------------------------------------

    async def sign(
        self, project_id: str, path: str | None, ttl: str | None, public_base: str
    ) -> dict[str, Any]:
        seconds = self._ttl(ttl)
        canonical = await self._existing_file(project_id, path)
        return self._link(project_id, canonical, seconds, public_base)

    async def share(self, project_id: str, path: str | None, public_base: str) -> dict[str, Any]:
        canonical = await self._existing_file(project_id, path)
        return self._link(project_id, canonical, self.limits.share_ttl_s, public_base)

    def open_signed(
        self, project_id: str, path: str, expires: str | None, sig: str | None
    ) -> AbstractAsyncContextManager[ObjectStream]:
        """The file a signed link names, to stream (400 bad path, 403 bad link; the
        context raises ``DriveNotFound`` for a file that is gone)."""
        canonical = _file_path(path)
        problem = link_problem(self._secret, project_id, canonical, expires, sig, self._clock())
        if problem is not None:
            raise DriveApiError.forbidden(problem)
        return self._storage.open(project_id, canonical)

    def _ttl(self, raw: str | None) -> int:
        if raw is None or raw == "":
            return self.limits.sign_ttl_s
        top = self.limits.max_sign_ttl_s
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= top:
            raise DriveApiError.bad_request(
                f"ttl {raw[:40]!r} is not a whole number of seconds from 1 to {top}; "
                "for a long-lived link use POST /v1/drive/share",
                code="invalid_ttl",
            )
        return int(raw)

    def _link(self, project_id: str, path: str, ttl: int, public_base: str) -> dict[str, Any]:
        expires = int(self._clock()) + ttl
        link = file_url(public_base, self._secret, project_id, path, expires)
        return {"url": link.url, "expires_at": _iso(datetime.fromtimestamp(expires, tz=UTC))}

    async def _existing_file(self, project_id: str, path: str | None) -> str:
        canonical = _file_path(path)
        if await self._storage.stat(project_id, canonical) is None:
            raise DriveApiError.not_found(f"there is no file {canonical!r} in the drive")
        return canonical

    # -- D5 delete -----------------------------------------------------------------------

    async def delete(self, project_id: str, path: str | None) -> dict[str, Any]:
        if not (path or "").strip():
            raise DriveApiError.bad_request(
                "path is empty; give the file or folder to delete (a folder ends in /)",
                code="invalid_path",
            )
        try:
            target = normalize_path(path or "")
        except DrivePathError as exc:
            raise path_error(exc) from exc
        if not target.path:
            raise DriveApiError.bad_request(
                "path names the drive's root; give a file or a folder inside it",
                code="invalid_path",
            )
        event: DriveFilesDeleted | None = None
        if not target.folder and await self._storage.delete_file(project_id, target.path):
            event = DriveFilesDeleted(paths=[target.path], deleted=1)
        else:
            # A folder: named with a trailing "/", or by its name alone (a file and a
            # folder never share a name, so a name that is no file may be a folder).
            deleted = await self._storage.delete_prefix(project_id, target.prefix)
            if deleted:
                event = DriveFilesDeleted(prefix=target.prefix, deleted=deleted)
        if event is None:
            raise DriveApiError.not_found(
                f"there is no file or folder {target.path!r} in the drive; list the drive "
                "to see what it holds"
            )
        seq = await self._log.append(project_id, event, event_id=drive_delete_id(new_id()))
        await self._settle(seq)
        return {"deleted": event.deleted}

    # -- D6 zip --------------------------------------------------------------------------

    async def zip(self, project_id: str, prefix: str | None) -> tuple[str, AsyncIterator[bytes]]:
        """The archive's root folder name and its bytes (404 if nothing is under
        ``prefix``)."""
        try:
            target = normalize_path(prefix or "")
        except DrivePathError as exc:
            raise path_error(exc) from exc
        canonical = target.prefix
        files = self._storage.iter_files(project_id, canonical)
        try:
            first = await anext(files)
        except StopAsyncIteration:
            raise DriveApiError.not_found(
                f"there are no files under {canonical or 'the drive root'!r}; nothing to zip"
            ) from None
        root = target.path.rsplit("/", 1)[-1] if target.path else ZIP_ROOT_OF_DRIVE

        async def every() -> AsyncIterator[Any]:
            yield first
            async for found in files:
                yield found

        def open_file(p: str) -> AbstractAsyncContextManager[ObjectStream]:
            return self._storage.open(project_id, p)

        return root, zip_files(root, canonical, every(), open_file)

    # -- D7 origin -----------------------------------------------------------------------

    async def origin(self, project_id: str, path: str | None) -> dict[str, Any]:
        canonical = _file_path(path)
        await self._catch_up(project_id)
        row = await self._index.get(project_id, canonical)
        if row is None:
            raise DriveApiError.not_found(f"there is no file {canonical!r} in the drive")
        return _origin(row)

    # -- waiting for the file table ----------------------------------------------------

    async def _settle(self, seq: int) -> None:
        if not await self._watch.wait_for(seq, self.limits.read_your_writes_s):
            log.warning("file table behind a write; answering anyway", seq=seq)

    async def _catch_up(self, project_id: str) -> None:
        last = await self._log.last_seq(project_id)
        if last and not await self._watch.wait_for(last, self.limits.list_sync_s):
            log.warning("file table behind the log; listing what it has", seq=last)


def _file_path(path: str | None) -> str:
    try:
        return normalize_file_path(path or "")
    except DrivePathError as exc:
        raise path_error(exc) from exc


def _origin(row: DriveFile) -> dict[str, Any]:
    return {
        "job_id": row.job_id,
        "skill_name": row.skill,
        "tool": row.tool,
        "created_at": _iso(row.created_at) if row.job_id else None,
    }


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
