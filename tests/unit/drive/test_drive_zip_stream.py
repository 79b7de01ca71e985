"""The streamed zip: a valid archive of every file under its root folder, built without
the archive ever whole, and a file gone by its turn left out."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from puras_drive.app.zip_stream import zip_files
from puras_drive.domain.objects import DriveNotFound, FileInfo, ObjectInfo, ObjectStream

WHEN = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
FILES = {"p/a.txt": b"alpha" * 1000, "p/q/b.png": b"\x89PNG" + bytes(range(256)) * 50}


async def _listing(paths: list[str]) -> AsyncIterator[FileInfo]:
    for path in paths:
        yield FileInfo(path=path, size=len(FILES.get(path, b"")), modified=WHEN)


@asynccontextmanager
async def _open(path: str) -> AsyncIterator[ObjectStream]:
    if path not in FILES:
        raise DriveNotFound(path)
    data = FILES[path]

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    kind = "image/png" if path.endswith(".png") else "text/plain"
    yield ObjectStream(info=ObjectInfo(path, len(data), WHEN, kind), chunks=chunks())


async def test_the_archive_holds_every_file_under_its_root() -> None:
    pieces = [
        p
        async for p in zip_files("p", "p/", _listing(["p/a.txt", "p/gone.txt", "p/q/b.png"]), _open)
    ]
    assert len(pieces) > 2  # sent as it was made
    with zipfile.ZipFile(io.BytesIO(b"".join(pieces))) as z:
        assert z.testzip() is None
        assert z.namelist() == ["p/a.txt", "p/q/b.png"]
        assert z.read("p/a.txt") == FILES["p/a.txt"]
        assert z.read("p/q/b.png") == FILES["p/q/b.png"]
        assert z.getinfo("p/a.txt").compress_type == zipfile.ZIP_DEFLATED
        assert z.getinfo("p/q/b.png").compress_type == zipfile.ZIP_STORED
        assert z.getinfo("p/a.txt").date_time == (2026, 2, 3, 4, 5, 6)
