"""The backstop for work that JetStream stopped delivering.

Runners fail a job with ``runner lost`` on the extra delivery after its last attempt. If
the runner holding that very delivery dies too, JetStream gives up on the message and
publishes a max-deliveries advisory instead; this watcher turns it into the same
``job.failed`` (deduplicated by event id with a runner's) and removes the dead message,
so no job stays ``running`` forever.

Advisories are plain NATS messages: one missed while no scheduler runs is not replayed.
That is the residual risk, and it needs three failures in a row to matter.
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import NotFoundError

from puras_common.bus import Bus
from puras_common.clock import Clock
from puras_common.events.base import decode_envelope
from puras_common.events.commands import RunJob
from puras_common.events.subjects import AGG_JOB, EVENTS_STREAM, WORK_STREAM, event_subject
from puras_common.events.types import TERMINAL_STATUSES, JobFailed, JobRecord
from puras_common.logging import get_logger

__all__ = ["LostWorkWatcher", "advisory_subject"]

log = get_logger(__name__)


class MaxDeliveries(msgspec.Struct, frozen=True):
    stream: str
    consumer: str
    stream_seq: int
    deliveries: int


_advisory = msgspec.json.Decoder(MaxDeliveries)
_run = msgspec.json.Decoder(RunJob)


def advisory_subject(durable: str) -> str:
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{WORK_STREAM}.{durable}"


class LostWorkWatcher:
    def __init__(self, bus: Bus, clock: Clock, durable: str) -> None:
        self._bus = bus
        self._clock = clock
        self._durable = durable
        self._sub: Subscription | None = None
        self.handled: asyncio.Queue[int] = asyncio.Queue()
        """Stream sequences of dead work messages dealt with (for operators' metrics, tests)."""

    async def start(self) -> None:
        self._sub = await self._bus.nc.subscribe(
            advisory_subject(self._durable), cb=self._on_advisory
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _on_advisory(self, msg: Msg) -> None:
        try:
            adv = _advisory.decode(msg.data)
            await self.fail_lost(adv.stream_seq, adv.deliveries)
        except Exception:
            log.exception("could not handle a max-deliveries advisory")

    async def fail_lost(self, stream_seq: int, deliveries: int) -> None:
        try:
            raw = await self._bus.js.get_msg(WORK_STREAM, seq=stream_seq)
        except NotFoundError:
            return  # acked or removed meanwhile: nothing is stuck
        work = _run.decode(raw.data or b"")
        subject = event_subject(work.project_id, AGG_JOB, work.job_id)
        try:
            last = await self._bus.js.get_last_msg(EVENTS_STREAM, subject, direct=True)
            env = decode_envelope(last.data or b"")
            done = env.type.removeprefix("job.") in TERMINAL_STATUSES
        except NotFoundError:
            done = False
        if not done:
            now = self._clock.now()
            job = JobRecord(
                id=work.job_id,
                project_id=work.project_id,
                skill=work.skill,
                status="failed",
                inputs=work.inputs,
                error="runner lost",
                deployment_id=work.deployment_id,
                attempts=max(1, deliveries - 1),
                created_at=work.created_at,
                finished_at=now,
            )
            await self._bus.append(
                JobFailed(job=job),
                project_id=work.project_id,
                aggregate=AGG_JOB,
                aggregate_id=work.job_id,
                event_id=f"{work.job_id}:terminal",
                correlation_id=work.job_id,
            )
            log.warning("job failed: runner lost on its last delivery", job_id=work.job_id)
        with contextlib.suppress(NotFoundError):
            await self._bus.js.delete_msg(WORK_STREAM, stream_seq)
        self.handled.put_nowait(stream_seq)
