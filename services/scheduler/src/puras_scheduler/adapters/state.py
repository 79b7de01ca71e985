"""The scheduler's view of the world: deployments and credit balances, from the log.

If the follower feeding it dies, the views are frozen: ``ready`` is cleared (health
turns red) and ``on_death`` tells the owner, which stops deciding from them.
"""

from __future__ import annotations

import asyncio

from puras_common.bus import Bus
from puras_common.bus.view_follower import OnDeath, ViewFollower
from puras_common.events.recorded import RecordedEvent
from puras_common.events.subjects import (
    AGG_DEPLOYMENTS,
    AGG_LEDGER,
    aggregate_filter,
    event_aggregate,
)
from puras_common.views.deployments import DeploymentsView
from puras_common.views.ledger import BalancesView
from puras_scheduler.app.ports import OnCredit

__all__ = ["SchedulerState"]


class SchedulerState:
    def __init__(self, bus: Bus, *, on_death: OnDeath | None = None) -> None:
        self._on_credit: OnCredit | None = None
        self.deployments = DeploymentsView()
        self.balances = BalancesView()
        self._follow = ViewFollower(
            bus,
            [aggregate_filter(AGG_DEPLOYMENTS), aggregate_filter(AGG_LEDGER)],
            self._apply,
            name="scheduler-state",
            on_death=on_death,
        )

    @property
    def ready(self) -> asyncio.Event:
        return self._follow.ready

    @property
    def last_seq(self) -> int:
        return self._follow.last_seq

    @property
    def alive(self) -> bool:
        """The follower runs: false means the views are frozen."""
        return self._follow.alive

    @property
    def failure(self) -> str | None:
        return self._follow.failure

    def _apply(self, rec: RecordedEvent) -> None:
        if event_aggregate(rec.subject) == AGG_DEPLOYMENTS:
            self.deployments.apply(rec)
            return
        change = self.balances.apply(rec)
        # Credit arriving for a project with jobs waiting releases them (J7).
        if (
            change is not None
            and change[0] <= 0 < change[1]
            and self.ready.is_set()
            and self._on_credit is not None
        ):
            self._on_credit(rec.envelope.project_id)

    async def start(self, on_credit: OnCredit) -> None:
        # Given here, not at construction: what reacts to credit (the scheduler) is
        # built on these views, and nothing is applied before the follower starts.
        self._on_credit = on_credit
        await self._follow.start()

    async def stop(self) -> None:
        await self._follow.stop()

    async def wait_for(self, seq: int, timeout: float) -> bool:
        return await self._follow.wait_for(seq, timeout)
