"""Waiting until a log sequence is applied: the one primitive behind every ``wait_for``.

Whatever follows the event log in order (an in-memory view, a projector, a watcher of
projectors' checkpoints) keeps one :class:`SequenceBarrier` per thing it follows, moves
it forward as it applies events, and hands out bounded waits for a sequence someone
knows was written (read-your-writes after a publish, or a sequence handed over by
another service).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools

__all__ = ["SequenceBarrier"]


class SequenceBarrier:
    """The highest sequence applied so far, and bounded waits for a higher one.

    ``advance`` is synchronous and cheap: an applier calls it after every batch without
    a lock or a task; only waiters whose sequence was reached are woken.
    """

    def __init__(self, seq: int = 0) -> None:
        self._seq = seq
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def seq(self) -> int:
        """Everything up to this sequence is applied."""
        return self._seq

    def advance(self, seq: int) -> None:
        """Everything up to ``seq`` is applied now (a lower ``seq`` changes nothing)."""
        if seq > self._seq:
            self.reset(seq)

    def reset(self, seq: int) -> None:
        """Start over from ``seq``, which may be lower (a projection rebuilt from 0).

        Waiters for a sequence above it keep waiting.
        """
        self._seq = seq
        w = self._waiters
        while w and w[0][0] <= seq:
            _, _, fut = heapq.heappop(w)
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for ``seq``; ``False`` if it passed first."""
        if self._seq >= seq:
            return True
        if timeout <= 0:
            return False
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (seq, next(self._order), fut)
        heapq.heappush(self._waiters, entry)
        try:
            async with asyncio.timeout(timeout):
                await fut
        except TimeoutError:
            return self._seq >= seq
        finally:
            if fut.cancelled() or not fut.done():
                # Timed out or cancelled: leave no dead entry behind for a long wait.
                fut.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(entry)
                    heapq.heapify(self._waiters)
        return True
