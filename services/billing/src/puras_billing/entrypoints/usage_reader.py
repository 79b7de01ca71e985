"""The one replica that charges usage: it holds the checkpoint's lock, reads the job
subjects from the checkpoint, and hands them to :class:`~.usage.UsageLoop`.

Any number of billing replicas may run; one reads the job subjects at a time (a
Postgres session lock, tried every ``standby_poll_s``), the others stand by and take
over when its session ends (it died or lost its database). Even two readers at once
would charge nothing twice (every charge is looked up first) and lose nothing (each
writes only a position it has charged up to itself).

On the first start after the per-event-ack durable (``billing-usage``), reading
starts after that durable's ack floor, which is written as the checkpoint before the
durable is deleted: nothing it had not handled is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from puras_billing.adapters.job_events import (
    JobEvent,
    JobEventFollower,
    delete_legacy_durable,
    fetch_job_event,
    legacy_durable_floor,
)
from puras_billing.adapters.usage_checkpoint import PgUsageCheckpoint, UsagePosition
from puras_billing.app.usage import UsageBiller
from puras_billing.entrypoints.usage import RefusedUsage, UsageLoop
from puras_common.events.ids import BILLING_USAGE_DURABLE
from puras_common.logging import get_logger
from puras_common.telemetry import tracer

__all__ = ["UsageReader"]

log = get_logger(__name__)


class UsageReader:
    def __init__(
        self,
        dsn: str,
        js: JetStreamContext,
        biller: UsageBiller,
        *,
        refused: RefusedUsage,
        retry_max_s: float,
        max_inflight: int,
        save_every_s: float,
        standby_poll_s: float = 1.0,
        name: str = BILLING_USAGE_DURABLE,
    ) -> None:
        self._dsn = dsn
        self._js = js
        self._biller = biller
        self._refused = refused
        self._retry_max_s = retry_max_s
        self._max_inflight = max_inflight
        self._save_every_s = save_every_s
        self._standby_poll_s = standby_poll_s
        self._name = name
        self.active = asyncio.Event()
        """Set while this replica is the one reading the job subjects."""
        self.loop: UsageLoop | None = None

    async def run(self, stop: asyncio.Event) -> None:
        store = await PgUsageCheckpoint.connect(self._dsn, self._name)
        follower: JobEventFollower | None = None
        try:
            while not await store.try_lock():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._standby_poll_s)
                if stop.is_set():
                    return
            last_seq, held_seqs = await self._position(store)
            held = [await self._held_event(s) for s in held_seqs]
            follower = JobEventFollower(self._js, start_seq=last_seq + 1)
            await follower.start()
            self.loop = UsageLoop(
                self._biller,
                store,
                tracer("puras.billing"),
                start_after=last_seq,
                refused=self._refused,
                retry_max_s=self._retry_max_s,
                max_inflight=self._max_inflight,
                save_every_s=self._save_every_s,
            )
            self.active.set()
            log.info("reading the job subjects", after_seq=last_seq, held=len(held))
            await self.loop.run(follower, stop, held=[e for e in held if e is not None])
        finally:
            self.active.clear()
            if follower is not None:
                await follower.stop()
            await store.close()

    async def _position(self, store: PgUsageCheckpoint) -> UsagePosition:
        pos = await store.load()
        if pos is None:
            floor = await legacy_durable_floor(self._js)
            pos = (floor or 0, [])
            await store.save(*pos)
            log.info("usage checkpoint created", last_seq=pos[0], from_durable=floor is not None)
        # Its position is in the checkpoint now (also when a crash came between the two).
        await delete_legacy_durable(self._js)
        return pos

    async def _held_event(self, seq: int) -> JobEvent | None:
        try:
            return await fetch_job_event(self._js, seq)
        except NotFoundError as exc:
            # The log never deletes; a sequence that is not there was never a usage event.
            log.error("held usage event not in the log", seq=seq, error=str(exc))
            return None
