"""The S3-compatible backend of the drive's storage (MinIO in production), through the
``minio`` SDK.

One bucket; a project's files are the keys under ``drive/<project_id>/`` (``domain.paths``).
The SDK is synchronous: each call runs in a worker thread. An upload streams: the SDK
reads the file from a blocking reader fed chunk by chunk from the event loop, holding at
most one part (:data:`PART_SIZE`) in memory, and aborts its multipart upload on any
error, so a refused upload leaves no object. A bucket has no folders, only key
prefixes; to behave as the filesystem does, a file is not written where a folder of that
name exists or under a name that is a file.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import BinaryIO, Final, cast

from minio import Minio
from minio.datatypes import Object
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from puras_common.drive_paths import DrivePathError, normalize_file_path, normalize_prefix
from puras_drive.domain.content_types import SNIFF_BYTES, sniff_content_type
from puras_drive.domain.objects import (
    DriveConflict,
    DriveNotFound,
    DriveTooLarge,
    FileInfo,
    FolderInfo,
    ObjectInfo,
    ObjectStream,
    StoredObject,
)
from puras_drive.domain.paths import object_key, project_key_prefix

__all__ = ["S3Storage"]

PART_SIZE: Final = 5 * 1024 * 1024
"""Bytes per multipart part, S3's minimum: the SDK holds a part (and copies of it while
it signs and sends it), so this bounds what an upload holds in memory."""
READ_CHUNK: Final = 256 * 1024
"""Bytes per read of an object being streamed out."""
_DELETE_BATCH: Final = 1000
"""Keys per DeleteObjects request (S3's maximum)."""
_NOT_FOUND: Final = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound", "NotFound"})


class S3Storage:
    def __init__(self, client: Minio, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    async def ensure_bucket(self, *, create: bool) -> None:
        """Check the bucket is there (or make it, with ``create``): a missing bucket is
        said at start, not at the first upload."""
        if await asyncio.to_thread(self._client.bucket_exists, self.bucket):
            return
        if not create:
            raise RuntimeError(
                f"the drive's bucket {self.bucket!r} does not exist; create it, or set "
                "PURAS_DRIVE_S3_CREATE_BUCKET=true"
            )
        await asyncio.to_thread(self._client.make_bucket, self.bucket)

    # -- DriveStore: a bucket needs no folder per project -------------------------------

    async def provision(self, project_id: str) -> str:
        return f"s3://{self.bucket}/{project_key_prefix(project_id)}"

    async def is_provisioned(self, project_id: str) -> bool:
        project_key_prefix(project_id)
        return True

    # -- DriveStorage -----------------------------------------------------------------

    async def put(
        self,
        project_id: str,
        path: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        path = normalize_file_path(path)
        key = object_key(project_id, path)
        await asyncio.to_thread(self._check_room, project_id, path)
        source = chunks.__aiter__()
        # The content type goes with the upload's first request: sniff the head first.
        head = b""
        ended = False
        while len(head) < SNIFF_BYTES:
            try:
                head += await anext(source)
            except StopAsyncIteration:
                ended = True
                break
        content_type = sniff_content_type(head[:SNIFF_BYTES], path.rsplit("/", 1)[-1])
        reader = _BlockingReader(head, source, ended, asyncio.get_running_loop(), max_bytes)
        await asyncio.to_thread(
            self._client.put_object,
            self.bucket,
            key,
            cast(BinaryIO, reader),  # the SDK only calls read()
            -1,
            content_type=content_type,
            part_size=PART_SIZE,
            num_parallel_uploads=1,  # one part in memory at a time
        )
        return StoredObject(
            path=path,
            size=reader.size,
            sha256=reader.digest.hexdigest(),
            content_type=content_type,
        )

    @asynccontextmanager
    async def open(self, project_id: str, path: str) -> AsyncIterator[ObjectStream]:
        path = normalize_file_path(path)
        key = object_key(project_id, path)
        info = await self.stat(project_id, path)
        if info is None:
            raise DriveNotFound(f"there is no file {path!r} in the drive")
        try:
            response = await asyncio.to_thread(self._client.get_object, self.bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:  # deleted since the stat
                raise DriveNotFound(f"there is no file {path!r} in the drive") from None
            raise
        try:
            yield ObjectStream(info=info, chunks=_read_chunks(response.stream(READ_CHUNK)))
        finally:
            response.close()
            response.release_conn()

    async def stat(self, project_id: str, path: str) -> ObjectInfo | None:
        path = normalize_file_path(path)
        key = object_key(project_id, path)
        try:
            st = await asyncio.to_thread(self._client.stat_object, self.bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                return None
            raise
        return ObjectInfo(
            path=path,
            size=st.size or 0,
            modified=_utc(st.last_modified),
            content_type=st.content_type or "application/octet-stream",
        )

    async def list_children(self, project_id: str, prefix: str) -> list[FileInfo | FolderInfo]:
        prefix = normalize_prefix(prefix)
        return await asyncio.to_thread(self._list, project_id, prefix)

    async def delete_file(self, project_id: str, path: str) -> bool:
        path = normalize_file_path(path)
        if await self.stat(project_id, path) is None:
            return False
        await asyncio.to_thread(
            self._client.remove_object, self.bucket, object_key(project_id, path)
        )
        return True

    async def delete_prefix(self, project_id: str, prefix: str) -> int:
        prefix = normalize_prefix(prefix)
        return await asyncio.to_thread(self._delete_prefix, project_id, prefix)

    async def iter_files(self, project_id: str, prefix: str) -> AsyncIterator[FileInfo]:
        prefix = normalize_prefix(prefix)
        base = project_key_prefix(project_id)
        listing = self._client.list_objects(self.bucket, prefix=base + prefix, recursive=True)
        while True:
            # The listing fetches pages lazily: each step may be a request.
            obj = await asyncio.to_thread(next, listing, None)
            if obj is None:
                return
            info = _file_info(obj, base)
            if info is not None:
                yield info

    # -- in worker threads --------------------------------------------------------------

    def _check_room(self, project_id: str, path: str) -> None:
        """Refuse what the filesystem cannot hold: a file named as a folder there is, or
        a file under a name that is a file."""
        base = project_key_prefix(project_id)
        under = self._client.list_objects(self.bucket, prefix=f"{base}{path}/")
        if next(iter(under), None) is not None:
            raise DriveConflict(
                f"{path!r} is a folder in the drive; write the file under another name, "
                "or delete the folder first"
            )
        segments = path.split("/")
        for i in range(1, len(segments)):
            ancestor = "/".join(segments[:i])
            try:
                self._client.stat_object(self.bucket, base + ancestor)
            except S3Error as exc:
                if exc.code in _NOT_FOUND:
                    continue
                raise
            raise DriveConflict(
                f"{ancestor!r} is a file in the drive, not a folder; use another folder, "
                "or delete that file first"
            )

    def _list(self, project_id: str, prefix: str) -> list[FileInfo | FolderInfo]:
        base = project_key_prefix(project_id)
        found: list[FileInfo | FolderInfo] = []
        for obj in self._client.list_objects(self.bucket, prefix=base + prefix):
            name = (obj.object_name or "")[len(base) :]
            if obj.is_dir:
                folder = name.rstrip("/")
                if _is_canonical(folder) and folder.startswith(prefix):
                    found.append(FolderInfo(path=folder))
                continue
            info = _file_info(obj, base)
            if info is not None:
                found.append(info)
        return sorted(found, key=lambda e: e.name)

    def _delete_prefix(self, project_id: str, prefix: str) -> int:
        base = project_key_prefix(project_id)
        removed = 0
        batch: list[DeleteObject] = []
        listing = self._client.list_objects(self.bucket, prefix=base + prefix, recursive=True)
        for obj in listing:
            if obj.object_name:
                batch.append(DeleteObject(obj.object_name))
            if len(batch) == _DELETE_BATCH:
                removed += self._delete_batch(batch)
                batch = []
        if batch:
            removed += self._delete_batch(batch)
        return removed

    def _delete_batch(self, batch: list[DeleteObject]) -> int:
        # The SDK answers with the keys it could not delete, lazily: read them all.
        errors = list(self._client.remove_objects(self.bucket, batch))
        if errors:
            raise RuntimeError(f"the bucket refused to delete {len(errors)} keys: {errors[0]}")
        return len(batch)


class _BlockingReader:
    """A file-like ``read`` for the SDK's thread, fed from the async source on the event
    loop; hashes and counts what passes, and stops past ``max_bytes``."""

    def __init__(
        self,
        head: bytes,
        source: AsyncIterator[bytes],
        ended: bool,
        loop: asyncio.AbstractEventLoop,
        max_bytes: int | None,
    ) -> None:
        self._buffer = bytearray()
        self._source = source
        self._ended = ended
        self._loop = loop
        self._max = max_bytes
        self.size = 0
        self.digest = hashlib.sha256()
        self._take(head)

    def _take(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._max is not None and self.size > self._max:
            raise DriveTooLarge(self._max)
        self.digest.update(chunk)
        self._buffer += chunk

    def read(self, size: int = -1) -> bytes:
        # A short read is allowed (the SDK reads until it has a part): waiting for one
        # chunk at a time keeps this buffer to one chunk, not one part.
        while not self._buffer and not self._ended:
            future = asyncio.run_coroutine_threadsafe(_next_chunk(self._source), self._loop)
            chunk = future.result()
            if chunk is None:
                self._ended = True
            else:
                self._take(chunk)
        if size < 0 or size >= len(self._buffer):
            out = bytes(self._buffer)
            self._buffer.clear()
            return out
        out = bytes(memoryview(self._buffer)[:size])
        del self._buffer[:size]
        return out


async def _next_chunk(source: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(source)
    except StopAsyncIteration:
        return None


def _read_chunks(stream: Iterator[bytes]) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        while True:
            chunk = await asyncio.to_thread(next, stream, None)
            if chunk is None:
                return
            yield chunk

    return chunks()


def _file_info(obj: Object, base: str) -> FileInfo | None:
    """A listed key as a drive file, or ``None`` for a key no drive path names (written
    to the bucket by something else: never shown, so never reachable)."""
    path = (obj.object_name or "")[len(base) :]
    if not _is_canonical(path):
        return None
    return FileInfo(path=path, size=obj.size or 0, modified=_utc(obj.last_modified))


def _is_canonical(path: str) -> bool:
    try:
        return normalize_file_path(path) == path
    except DrivePathError:
        return False


def _utc(when: datetime | None) -> datetime:
    if when is None:
        return datetime.fromtimestamp(0, tz=UTC)
    return when.astimezone(UTC)
