"""In-memory views kept current from the log: follow, apply, know when caught up.

A service that decides from views (the gateway's keys and deployments, the scheduler's
deployments and balances) reads them from sequence 1 at start, is ``ready`` once it has
applied what the log held then, and can wait for a sequence it knows was written
(read-your-writes after its own publish, or a sequence another service handed it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from puras_common.bus.client import Bus
from puras_common.bus.follow import EventFollower
from puras_common.projection.base import RecordedEvent
from puras_common.projection.runner import decode_batch

__all__ = ["ViewFollower"]


class ViewFollower:
    def __init__(
        self, bus: Bus, filters: list[str], apply: Callable[[RecordedEvent], None], *, name: str
    ) -> None:
        self._bus = bus
        self._filters = filters
        self._apply = apply
        self._name = name
        self.last_seq = 0
        self.ready = asyncio.Event()
        self._advanced = asyncio.Condition()
        self._follower: EventFollower | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._follower = EventFollower(self._bus.js, self._filters, start_seq=1)
        await self._follower.start()
        if self._follower.initial_pending == 0:
            self.ready.set()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._follower is not None:
            await self._follower.stop()

    async def _run(self) -> None:
        assert self._follower is not None
        while True:
            raw = await self._follower.next_batch(1000)
            for rec in decode_batch(raw):
                self._apply(rec)
            self.last_seq = raw[-1].seq
            if raw[-1].pending == 0:
                self.ready.set()
            async with self._advanced:
                self._advanced.notify_all()

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait (bounded) until everything up to ``seq`` of our subjects is applied."""
        if self.last_seq >= seq:
            return True
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self.last_seq >= seq)
        except TimeoutError:
            return False
        return True
