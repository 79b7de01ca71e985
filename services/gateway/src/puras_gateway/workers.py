"""Where each HTTP worker's in-memory views are, shared by the workers of one gateway.

Workers of one gateway share its port, so a client's next request may reach another
worker than the one that answered its write. A write that must show on that next
request (a key created or revoked, a deployment pushed or activated, a project) is
answered once *every* worker's views applied it, not only the answering one's: each
worker writes the sequence its views applied into its slot of a shared anonymous
mapping (made by the supervisor before it forks them), and a writer waits until each
joined slot reached its sequence. A slot is joined from just before a worker's final
catch-up with the log until the supervisor reaps it (its pid cleared), so a worker that
joins after a writer looked has that write already when it starts serving.

Slots are two aligned 8-byte words (pid, sequence), each written by one process only;
readers poll them at a millisecond: writes to the views are rare, and they are what
waits, never a job.
"""

from __future__ import annotations

import asyncio
import mmap
import struct

__all__ = ["WorkerSlots"]

_SLOT = struct.Struct("=qq")
POLL_S = 0.001


class WorkerSlots:
    """``n`` slots in memory shared across ``fork``; this process writes slot ``me``."""

    def __init__(self, n: int) -> None:
        self.n = n
        # Anonymous and MAP_SHARED (mmap's default): children forked after this see the
        # same pages, and nothing is left on disk.
        self._mem = mmap.mmap(-1, _SLOT.size * n)
        self.me: int | None = None

    def _read(self, i: int) -> tuple[int, int]:
        pid, seq = _SLOT.unpack_from(self._mem, i * _SLOT.size)
        return int(pid), int(seq)

    def clear(self, i: int) -> None:
        """The worker of slot ``i`` is gone (the supervisor reaped it)."""
        _SLOT.pack_into(self._mem, i * _SLOT.size, 0, 0)

    def join(self, i: int, pid: int, seq: int) -> None:
        """From now on writers wait for this worker (slot ``i``) too."""
        self.me = i
        _SLOT.pack_into(self._mem, i * _SLOT.size, pid, seq)

    def advance(self, seq: int) -> None:
        """This worker's views applied everything up to ``seq``."""
        if self.me is not None:
            struct.pack_into("=q", self._mem, self.me * _SLOT.size + 8, seq)

    def behind(self, seq: int) -> list[int]:
        """Pids of the other joined workers whose views have not applied ``seq`` yet."""
        out = []
        for i in range(self.n):
            if i == self.me:
                continue
            pid, at = self._read(i)
            if pid and at < seq:
                out.append(pid)
        return out

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait (bounded) until every other joined worker's views applied ``seq``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.behind(seq):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(POLL_S)
        return True
