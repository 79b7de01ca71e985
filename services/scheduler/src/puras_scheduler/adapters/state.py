"""The scheduler's view of the world: deployments and credit balances, from the log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from puras_common.bus import Bus, EventFollower
from puras_common.events.subjects import AGG_DEPLOYMENTS, AGG_LEDGER, aggregate_filter
from puras_common.projection import decode_batch
from puras_common.views.deployments import DeploymentsView
from puras_common.views.ledger import BalancesView

__all__ = ["SchedulerState"]


class SchedulerState:
    def __init__(self, bus: Bus, on_credit: Callable[[str], None]) -> None:
        self._bus = bus
        self._on_credit = on_credit
        self.deployments = DeploymentsView()
        self.balances = BalancesView()
        self.last_seq = 0
        self.ready = asyncio.Event()
        self._advanced = asyncio.Condition()
        self._follower: EventFollower | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._follower = EventFollower(
            self._bus.js,
            [aggregate_filter(AGG_DEPLOYMENTS), aggregate_filter(AGG_LEDGER)],
            start_seq=1,
        )
        await self._follower.start()
        if self._follower.initial_pending == 0:
            self.ready.set()
        self._task = asyncio.create_task(self._run(), name="scheduler-state")

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
                    continue
                change = self.balances.apply(rec)
                # Credit arriving for a project with jobs waiting releases them (J7).
                if change is not None and change[0] <= 0 < change[1] and self.ready.is_set():
                    self._on_credit(rec.envelope.project_id)
            self.last_seq = raw[-1].seq
            if raw[-1].pending == 0:
                self.ready.set()
            async with self._advanced:
                self._advanced.notify_all()

    async def wait_for(self, seq: int, timeout: float) -> bool:
        if self.last_seq >= seq:
            return True
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self.last_seq >= seq)
        except TimeoutError:
            return False
        return True
