"""The scheduler's view of the world: deployments and credit balances, from the log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from puras_common.bus import Bus
from puras_common.events.subjects import AGG_DEPLOYMENTS, AGG_LEDGER, aggregate_filter
from puras_common.projection.base import RecordedEvent
from puras_common.views.deployments import DeploymentsView
from puras_common.views.follow import ViewFollower
from puras_common.views.ledger import BalancesView

__all__ = ["SchedulerState"]


class SchedulerState:
    def __init__(self, bus: Bus, on_credit: Callable[[str], None]) -> None:
        self._on_credit = on_credit
        self.deployments = DeploymentsView()
        self.balances = BalancesView()
        self._follow = ViewFollower(
            bus,
            [aggregate_filter(AGG_DEPLOYMENTS), aggregate_filter(AGG_LEDGER)],
            self._apply,
            name="scheduler-state",
        )

    @property
    def ready(self) -> asyncio.Event:
        return self._follow.ready

    @property
    def last_seq(self) -> int:
        return self._follow.last_seq

    def _apply(self, rec: RecordedEvent) -> None:
        if rec.subject.split(".")[2] == AGG_DEPLOYMENTS:
            self.deployments.apply(rec)
            return
        change = self.balances.apply(rec)
        # Credit arriving for a project with jobs waiting releases them (J7).
        if change is not None and change[0] <= 0 < change[1] and self.ready.is_set():
            self._on_credit(rec.envelope.project_id)

    async def start(self) -> None:
        await self._follow.start()

    async def stop(self) -> None:
        await self._follow.stop()

    async def wait_for(self, seq: int, timeout: float) -> bool:
        return await self._follow.wait_for(seq, timeout)
