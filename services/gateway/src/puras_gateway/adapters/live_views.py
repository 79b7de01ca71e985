"""Projects, keys and deployments held in memory, kept current from the log.

The submit and auth paths read these, never Postgres (ARCHITECTURE §5a). ``ready`` is
set once the views have caught up with what the log held at start, and
``wait_for(seq)`` gives read-your-writes after this process publishes.

An event the views cannot decode or apply is skipped (ViewFollower: logged at error
level, counted). It is *accounted for* once ``projection_quarantine`` holds an entry for
its sequence: the keys and deployments projections read the same subjects with the same
decoder, so an event the views cannot decode is quarantined there too, and resolving
that entry settles both. Until then (or for good, when only the in-memory fold refused
it: a bug to fix, applied at the next start) ``unaccounted`` counts it and ``/readyz``
reports it degraded under ``views_skipped``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg

from puras_common.bus import Bus
from puras_common.bus.follow import RawEvent
from puras_common.bus.view_follower import ViewFollower
from puras_common.events.base import Envelope
from puras_common.events.recorded import RecordedEvent
from puras_common.events.subjects import (
    AGG_DEPLOYMENTS,
    AGG_KEY,
    AGG_PROJECT,
    aggregate_filter,
    event_aggregate,
)
from puras_common.logging import get_logger
from puras_common.views.deployments import DeploymentsView
from puras_common.views.keys import KeysView

__all__ = ["VIEWS_NAME", "LiveViews"]

log = get_logger(__name__)

VIEWS_NAME = "live-views"
"""How these views are named in logs and in ``/readyz``."""

FILTERS = [
    aggregate_filter(AGG_PROJECT),
    aggregate_filter(AGG_KEY),
    aggregate_filter(AGG_DEPLOYMENTS),
]


class LiveViews:
    def __init__(self, bus: Bus, pool: asyncpg.Pool | None = None) -> None:
        self.keys = KeysView()
        self.deployments = DeploymentsView()
        self._pool = pool
        self._pending: set[int] = set()
        self._checks: set[asyncio.Task[Any]] = set()
        self._follow = ViewFollower(
            bus, FILTERS, self._apply, name=VIEWS_NAME, on_skip=self._record_skip
        )

    @property
    def ready(self) -> asyncio.Event:
        return self._follow.ready

    @property
    def alive(self) -> bool:
        """The follower runs: false means the views are frozen (not ready)."""
        return self._follow.alive

    @property
    def failure(self) -> str | None:
        return self._follow.failure

    @property
    def skipped_total(self) -> int:
        return self._follow.skipped_total

    @property
    def unaccounted(self) -> int:
        """Skipped events with no ``projection_quarantine`` entry (of any projection)."""
        return len(self._pending)

    def _record_skip(self, raw: RawEvent, _env: Envelope | None, _reason: str) -> None:
        self._pending.add(raw.seq)
        if self._pool is None:
            return
        task = asyncio.get_running_loop().create_task(self.recheck())
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    async def recheck(self) -> None:
        """Drop skipped events that are on record now (called on every quarantine
        change the checkpoint watcher hears of, and after each skip)."""
        if not self._pending or self._pool is None:
            return
        try:
            rows = await self._pool.fetch(
                "SELECT DISTINCT stream_seq FROM projection_quarantine "
                "WHERE stream_seq = ANY($1::bigint[])",
                sorted(self._pending),
            )
        except asyncpg.UndefinedTableError:
            return
        except Exception as exc:  # asked again at the next quarantine change
            log.warning("cannot check skipped events against the quarantine", error=str(exc))
            return
        self._pending -= {int(r["stream_seq"]) for r in rows}

    def _apply(self, rec: RecordedEvent) -> None:
        if event_aggregate(rec.subject) == AGG_DEPLOYMENTS:
            self.deployments.apply(rec)
        else:
            self.keys.apply(rec)

    async def start(self) -> None:
        await self._follow.start()

    async def stop(self) -> None:
        await self._follow.stop()
        for t in list(self._checks):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def wait_for(self, seq: int, timeout: float = 5.0) -> bool:
        return await self._follow.wait_for(seq, timeout)
