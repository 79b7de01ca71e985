"""An upload held on local disk until the form says where it goes.

A ``path`` field that arrives after the ``file`` part cannot choose the file's place
before its bytes are read, so that one upload is written to a private temporary file
(in 1 MiB writes, in a worker thread; never whole in memory), then sent to storage
from there, and removed in every case.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from typing import Final

from puras_drive.domain.objects import DriveTooLarge

__all__ = ["Spooled"]

_WRITE: Final = 1024 * 1024
_READ: Final = 256 * 1024


class Spooled:
    def __init__(self, filename: str | None) -> None:
        self.filename = filename
        fd, self._name = tempfile.mkstemp(prefix="puras-drive-upload-")
        self._file = os.fdopen(fd, "w+b")
        self.size = 0

    async def fill(self, chunks: AsyncIterable[bytes], max_bytes: int) -> None:
        pending: list[bytes] = []
        held = 0
        async for chunk in chunks:
            self.size += len(chunk)
            if self.size > max_bytes:
                raise DriveTooLarge(max_bytes)
            pending.append(chunk)
            held += len(chunk)
            if held >= _WRITE:
                await asyncio.to_thread(self._file.write, b"".join(pending))
                pending, held = [], 0
        await asyncio.to_thread(self._file.write, b"".join(pending))
        await asyncio.to_thread(self._file.flush)

    async def chunks(self) -> AsyncIterator[bytes]:
        await asyncio.to_thread(self._file.seek, 0)
        while chunk := await asyncio.to_thread(self._file.read, _READ):
            yield chunk

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._name)
