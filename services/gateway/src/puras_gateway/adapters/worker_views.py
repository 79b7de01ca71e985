"""The live views of one worker among several sharing a gateway's port.

The same views as :class:`LiveViews`; what differs is read-your-writes: a write this
worker waits for (``wait_for``) is also waited for in every other worker's views
(``puras_gateway.workers``), since the client's next request may reach any of them.
"""

from __future__ import annotations

import asyncio
import os

import asyncpg

from puras_common.bus import Bus
from puras_common.events.recorded import RecordedEvent
from puras_gateway.adapters.live_views import FILTERS, LiveViews
from puras_gateway.workers import WorkerSlots

__all__ = ["WorkerViews"]


class WorkerViews(LiveViews):
    def __init__(
        self, bus: Bus, slots: WorkerSlots, slot: int, pool: asyncpg.Pool | None = None
    ) -> None:
        super().__init__(bus, pool=pool)
        self._bus = bus
        self._slots = slots
        self._slot = slot

    def _apply(self, rec: RecordedEvent) -> None:
        super()._apply(rec)
        self._slots.advance(rec.seq)

    async def join(self, timeout: float) -> bool:
        """Join the workers writers wait for, then catch up with the log as it is now:
        a write answered before we joined is applied here before we serve."""
        self._slots.join(self._slot, os.getpid(), self._follow.last_seq)
        last = max([await self._bus.last_subject_seq(f) for f in FILTERS])
        return await super().wait_for(last, timeout)

    async def wait_for(self, seq: int, timeout: float = 5.0) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if not await super().wait_for(seq, timeout):
            return False
        return await self._slots.wait_for(seq, max(0.0, deadline - loop.time()))
