"""The job's subject in the event log over NATS / JetStream (the runner's ``JobEventLog``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Final

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import NotFoundError

from puras_common.bus import Bus
from puras_common.events.base import DecodeError, Envelope, Event, decode_envelope, decode_event
from puras_common.events.commands import RunJob
from puras_common.events.subjects import AGG_JOB, EVENTS_STREAM, event_subject
from puras_common.events.types import JobLogged, JobStarted
from puras_common.logging import get_logger
from puras_runner.app.ports import LastEvent

__all__ = ["NatsJobEvents", "SubjectWatch"]

log = get_logger(__name__)

MAX_WALK: Final = 10_000
"""Events read when looking for a job's latest start (only on the ``runner lost`` path)."""
MAX_HISTORY: Final = 100_000
"""Events read when an agent run resumes: far more than a run's step limit makes."""


class SubjectWatch:
    def __init__(self, sub: Subscription) -> None:
        self._sub = sub

    async def close(self) -> None:
        try:
            await self._sub.unsubscribe()
        except Exception as exc:  # a closed connection has no subscription left anyway
            log.debug("unsubscribe failed", error=str(exc))


class NatsJobEvents:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    @staticmethod
    def _subject(job: RunJob) -> str:
        subject: str = event_subject(job.project_id, AGG_JOB, job.job_id)
        return subject

    async def append(
        self, event: Event, *, job: RunJob, event_id: str, expected_seq: int | None
    ) -> int:
        published = await self._bus.append(
            event,
            project_id=job.project_id,
            aggregate=AGG_JOB,
            aggregate_id=job.job_id,
            event_id=event_id,
            correlation_id=job.job_id,
            expected_last_subject_seq=expected_seq,
        )
        return int(published.seq)

    async def last(self, job: RunJob) -> LastEvent | None:
        try:
            raw = await self._bus.js.get_last_msg(EVENTS_STREAM, self._subject(job), direct=True)
        except NotFoundError:
            return None
        # Loud on a malformed log entry (DecodeError propagates): the job's state is
        # unknown, so the delivery is not acked and an operator sees why.
        env = decode_envelope(raw.data or b"")
        return LastEvent(seq=int(raw.seq or 0), type=env.type)

    async def latest_started(self, job: RunJob) -> JobStarted | None:
        latest: JobStarted | None = None
        async for _seq, env in self._walk(job, MAX_WALK):
            if env.type == JobStarted.type:
                event = self._decode(env)
                if isinstance(event, JobStarted):
                    latest = event
        return latest

    async def since(self, job: RunJob, seq: int) -> list[LastEvent]:
        out: list[LastEvent] = []
        async for stored, env in self._walk(job, MAX_HISTORY, start=seq + 1):
            out.append(LastEvent(seq=stored, type=env.type))
        return out

    async def history(self, job: RunJob) -> list[Event]:
        out: list[Event] = []
        async for _seq, env in self._walk(job, MAX_HISTORY):
            event = self._decode(env)
            if event is not None:
                out.append(event)
        return out

    @staticmethod
    def _decode(env: Envelope) -> Event | None:
        try:
            return decode_event(env)
        except DecodeError as exc:
            log.warning("undecodable job event skipped", type=env.type, error=str(exc))
            return None

    async def _walk(
        self, job: RunJob, limit: int, *, start: int = 1
    ) -> AsyncIterator[tuple[int, Envelope]]:
        """The job's stored events (with their sequence) from ``start`` on, by direct gets
        (no consumer)."""
        subject = self._subject(job)
        seq = start
        for _ in range(limit):
            try:
                raw = await self._bus.js.get_msg(
                    EVENTS_STREAM, seq=seq, subject=subject, next=True, direct=True
                )
            except NotFoundError:
                return
            try:
                yield int(raw.seq or seq), decode_envelope(raw.data or b"")
            except DecodeError as exc:
                log.warning("undecodable job event skipped", seq=raw.seq, error=str(exc))
            seq = int(raw.seq or seq) + 1

    async def watch(
        self, job: RunJob, on_event: Callable[[str, Event | None], None]
    ) -> SubjectWatch:
        # A plain subscription: JetStream also delivers stored messages to core
        # subscribers of their subject, so this costs no consumer (ARCHITECTURE §5a).
        async def _cb(msg: Msg) -> None:
            try:
                env = decode_envelope(msg.data)
            except DecodeError:
                return
            if env.type == JobLogged.type:
                return
            event: Event | None = None
            if env.type == JobStarted.type:
                try:
                    event = decode_event(env)
                except DecodeError:
                    return
            on_event(env.type, event)

        sub = await self._bus.nc.subscribe(self._subject(job), cb=_cb)
        return SubjectWatch(sub)
