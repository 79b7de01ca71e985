"""A zip of drive files, produced while it is sent (SPEC D6).

``zipfile`` writes to a sink that cannot seek, so every entry carries a data descriptor
and nothing is rewritten: what the sink holds after each write is sent at once, and the
archive is never whole in memory or on disk. Compression is CPU work, so writes run in
a worker thread, one at a time (a ``ZipFile`` is not shared between threads at once).
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime

from puras_drive.domain.objects import DriveNotFound, FileInfo, ObjectStream

__all__ = ["zip_files"]

_ALREADY_COMPRESSED = ("image/", "video/", "audio/", "application/zip", "application/gzip")


class _Sink(io.RawIOBase):
    """Collects what ``zipfile`` writes until it is taken; cannot seek."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def write(self, data: object) -> int:
        chunk = bytes(data)  # type: ignore[call-overload]
        self._parts.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


Opener = Callable[[str], AbstractAsyncContextManager[ObjectStream]]


async def zip_files(
    root: str,
    prefix: str,
    files: AsyncIterator[FileInfo],
    open_file: Opener,
) -> AsyncIterator[bytes]:
    """The bytes of a zip holding ``files`` (all under ``prefix``) as
    ``<root>/<path below prefix>``. A file gone between the listing and its turn is left
    out (the zip shows the drive as it is while it is read)."""
    sink = _Sink()
    archive = zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
    try:
        async for found in files:
            name = f"{root}/{found.path[len(prefix) :]}"
            try:
                async with open_file(found.path) as stream:
                    info = zipfile.ZipInfo(name, date_time=_zip_time(found.modified))
                    info.file_size = stream.info.size  # decides zip64 up front
                    stored = stream.info.content_type.startswith(_ALREADY_COMPRESSED)
                    info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
                    entry = archive.open(info, mode="w")
                    try:
                        async for chunk in stream.chunks:
                            await asyncio.to_thread(entry.write, chunk)
                            if out := sink.take():
                                yield out
                    finally:
                        await asyncio.to_thread(entry.close)
            except DriveNotFound:
                continue
            if out := sink.take():
                yield out
        await asyncio.to_thread(archive.close)
        yield sink.take()
    finally:
        if archive.fp is not None:
            # Abandoned mid-way (the client left): nothing more is written or sent.
            archive.fp = None


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    # A zip's dates start in 1980.
    if when.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)
