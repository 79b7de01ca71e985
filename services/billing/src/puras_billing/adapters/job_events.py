"""The job subjects of the event log as billing reads them: in order, from a position.

An ordered consumer of ``ev.*.job.*`` (ephemeral, no acks, flow-controlled, recreated
by the client from the last message it saw on any gap), so nats-server does one
delivery per job event and nothing more; where billing has got to is billing's own
checkpoint. Messages are handed over as they came (headers and all: a usage event's
trace context is in them), in batches of whatever is ready.

Billing used to read the same subjects through a durable with an ack per job event
(``billing-usage``); :func:`legacy_durable_floor` and :func:`delete_legacy_durable`
carry its position over once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from puras_common.events.ids import BILLING_USAGE_DURABLE
from puras_common.events.subjects import AGG_JOB, EVENTS_STREAM, aggregate_filter

__all__ = [
    "JOB_FILTER",
    "JobEvent",
    "JobEventFollower",
    "delete_legacy_durable",
    "fetch_job_event",
    "legacy_durable_floor",
]

JOB_FILTER = aggregate_filter(AGG_JOB)
"""Every job subject (usage events ride on them, beside the job's other events)."""


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One stored job event: its stream sequence, payload and headers."""

    seq: int
    data: bytes
    headers: dict[str, str] | None = None


class JobEventFollower:
    """Every message of the job subjects from ``start_seq`` on, in order, once each."""

    def __init__(self, js: JetStreamContext, *, start_seq: int) -> None:
        self._js = js
        self._start = max(1, start_seq)
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._sub: JetStreamContext.PushSubscription | None = None

    async def start(self) -> None:
        self._sub = await self._js.subscribe(
            JOB_FILTER,
            stream=EVENTS_STREAM,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self._start,
                inactive_threshold=300.0,
            ),
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            cb=self._on_msg,
            idle_heartbeat=2.0,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_msg(self, msg: Msg) -> None:
        self._queue.put_nowait(msg)

    async def next_batch(self, max_n: int, timeout: float) -> list[Msg]:
        """Wait up to ``timeout`` for a message, then take what else is ready."""
        q = self._queue
        if q.empty():
            # A timeout scope, not wait_for: no task made per wait (job events often
            # come one at a time, so this runs about once per event).
            try:
                async with asyncio.timeout(timeout):
                    first = await q.get()
            except TimeoutError:
                return []
        else:
            first = q.get_nowait()
        batch = [first]
        while len(batch) < max_n and not q.empty():
            batch.append(q.get_nowait())
        return batch


async def fetch_job_event(js: JetStreamContext, seq: int) -> JobEvent:
    """The stored message ``seq`` (a held usage event read again after a restart)."""
    raw = await js.get_msg(EVENTS_STREAM, seq, direct=True)
    return JobEvent(seq=seq, data=raw.data or b"", headers=raw.headers)


async def legacy_durable_floor(js: JetStreamContext) -> int | None:
    """The ack floor of the old per-event-ack durable, if it is still there: every job
    event up to it was handled (its usage charged)."""
    try:
        info = await js.consumer_info(EVENTS_STREAM, BILLING_USAGE_DURABLE)
    except NotFoundError:
        return None
    return int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0


async def delete_legacy_durable(js: JetStreamContext) -> None:
    with contextlib.suppress(NotFoundError):
        await js.delete_consumer(EVENTS_STREAM, BILLING_USAGE_DURABLE)
