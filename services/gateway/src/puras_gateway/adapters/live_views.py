"""Projects, keys and deployments held in memory, kept current from the log.

The submit and auth paths read these, never Postgres (ARCHITECTURE §5a). ``ready`` is
set once the views have caught up with what the log held at start, and
``wait_for(seq)`` gives read-your-writes after this process publishes.
"""

from __future__ import annotations

import asyncio

from puras_common.bus import Bus
from puras_common.events.subjects import AGG_DEPLOYMENTS, AGG_KEY, AGG_PROJECT, aggregate_filter
from puras_common.projection.base import RecordedEvent
from puras_common.views.deployments import DeploymentsView
from puras_common.views.follow import ViewFollower
from puras_common.views.keys import KeysView

__all__ = ["LiveViews"]

FILTERS = [
    aggregate_filter(AGG_PROJECT),
    aggregate_filter(AGG_KEY),
    aggregate_filter(AGG_DEPLOYMENTS),
]


class LiveViews:
    def __init__(self, bus: Bus) -> None:
        self.keys = KeysView()
        self.deployments = DeploymentsView()
        self._follow = ViewFollower(bus, FILTERS, self._apply, name="live-views")

    @property
    def ready(self) -> asyncio.Event:
        return self._follow.ready

    def _apply(self, rec: RecordedEvent) -> None:
        if rec.subject.split(".")[2] == AGG_DEPLOYMENTS:
            self.deployments.apply(rec)
        else:
            self.keys.apply(rec)

    async def start(self) -> None:
        await self._follow.start()

    async def stop(self) -> None:
        await self._follow.stop()

    async def wait_for(self, seq: int, timeout: float = 5.0) -> bool:
        return await self._follow.wait_for(seq, timeout)
