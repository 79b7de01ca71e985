"""Projects, keys and deployments held in memory, kept current from the log.

The submit and auth paths read these, never Postgres (ARCHITECTURE §5a). The follower
starts at sequence 1; ``ready`` is set once it has caught up with what the log held at
start, and ``wait_for(seq)`` gives read-your-writes after this process publishes.
"""

from __future__ import annotations

import asyncio
import contextlib

from puras_common.bus import Bus, EventFollower
from puras_common.events.subjects import AGG_DEPLOYMENTS, AGG_KEY, AGG_PROJECT, aggregate_filter
from puras_common.logging import get_logger
from puras_common.projection import decode_batch
from puras_common.views.deployments import DeploymentsView
from puras_common.views.keys import KeysView

__all__ = ["LiveViews"]

log = get_logger(__name__)

FILTERS = [
    aggregate_filter(AGG_PROJECT),
    aggregate_filter(AGG_KEY),
    aggregate_filter(AGG_DEPLOYMENTS),
]


class LiveViews:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self.keys = KeysView()
        self.deployments = DeploymentsView()
        self.last_seq = 0
        self.ready = asyncio.Event()
        self._advanced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._follower: EventFollower | None = None

    async def start(self) -> None:
        self._follower = EventFollower(self._bus.js, FILTERS, start_seq=1)
        await self._follower.start()
        if self._follower.initial_pending == 0:
            self.ready.set()
        self._task = asyncio.create_task(self._run(), name="live-views")

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
                if rec.subject.split(".")[2] == AGG_DEPLOYMENTS:
                    self.deployments.apply(rec)
                else:
                    self.keys.apply(rec)
            self.last_seq = raw[-1].seq
            if raw[-1].pending == 0:
                self.ready.set()
            async with self._advanced:
                self._advanced.notify_all()

    async def wait_for(self, seq: int, timeout: float = 5.0) -> bool:
        """Wait until everything up to ``seq`` (a sequence of one of our subjects) is applied."""
        if self.last_seq >= seq:
            return True
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self.last_seq >= seq)
        except TimeoutError:
            return False
        return True
