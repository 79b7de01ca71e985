"""Reading one job's events straight from the log: replay and live tail.

A job's events are the messages on ``ev.<project>.job.<id>``; an event's position (its
``id`` in the events API) is its 1-based place among them. Replay walks the subject
with direct gets (JetStream keeps a per-subject index); live events come from a plain
subscription made *before* the replay, de-duplicated by event id, so nothing published
in between is lost or shown twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.errors import NotFoundError

from puras_common.bus import Bus
from puras_common.events.base import decode_envelope, decode_event
from puras_common.events.subjects import AGG_JOB, EVENTS_STREAM, event_subject
from puras_gateway.domain.job_events import JobEvent

__all__ = ["JobLog", "JobTail"]


class JobTail:
    """Live events of one job from a subscription opened before anything was published."""

    def __init__(self) -> None:
        self._sub: Subscription | None = None
        # Messages in arrival order. The subscription's callback appends synchronously,
        # so a message is here as soon as any later message (of any subscription on the
        # connection) has been handed to its own callback: a stream that compares live
        # frames with the events relies on that order.
        self._arrived: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._seen: set[str] = set()
        self.count = 0

    def bind(self, sub: Subscription) -> None:
        """The subscription feeding this tail (ended by :meth:`close`)."""
        self._sub = sub

    def offer(self, data: bytes) -> None:
        self._arrived.append(data)
        self._ready.set()

    def mark_seen(self, events: list[JobEvent]) -> None:
        for e in events:
            self._seen.add(e.envelope.id)
        self.count = max(self.count, len(events))

    def poll(self) -> JobEvent | None:
        """The next new event that has arrived already, or ``None``."""
        while self._arrived:
            env = decode_envelope(self._arrived.popleft())
            if env.id in self._seen:
                continue
            self._seen.add(env.id)
            self.count += 1
            return JobEvent(idx=self.count, envelope=env, event=decode_event(env))
        self._ready.clear()
        return None

    async def wait(self, timeout: float | None) -> bool:
        """Whether a message arrived (maybe a duplicate) before ``timeout`` passed."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def next(self, timeout: float | None) -> JobEvent | None:
        """The next new event, or ``None`` when ``timeout`` passes first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while (ev := self.poll()) is None:
            left = None if deadline is None else deadline - loop.time()
            if (left is not None and left <= 0) or not await self.wait(left):
                return None
        return ev

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()


class JobLog:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def tail(self, project_id: str, job_id: str) -> JobTail:
        tail = JobTail()

        async def _cb(msg: Msg) -> None:
            tail.offer(msg.data)

        sub = await self._bus.nc.subscribe(
            event_subject(project_id, AGG_JOB, job_id),
            cb=_cb,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
        tail.bind(sub)
        return tail

    async def replay(
        self, project_id: str, job_id: str, *, after_seq: int = 0, first_idx: int = 1
    ) -> list[JobEvent]:
        """The job's events in order: all of them, or those after stream seq ``after_seq``
        (numbered from ``first_idx``). Empty if the log has none."""
        out: list[JobEvent] = []
        subject = event_subject(project_id, AGG_JOB, job_id)
        async for seq, data in self._bus.subject_messages(subject, after_seq=after_seq):
            env = decode_envelope(data)
            out.append(
                JobEvent(idx=first_idx + len(out), envelope=env, event=decode_event(env), seq=seq)
            )
        return out

    async def last(self, project_id: str, job_id: str) -> JobEvent | None:
        """The job's newest event (its position unknown: ``idx`` 0), or ``None``."""
        subject = event_subject(project_id, AGG_JOB, job_id)
        try:
            msg = await self._bus.js.get_last_msg(EVENTS_STREAM, subject, direct=True)
        except NotFoundError:
            return None
        env = decode_envelope(msg.data or b"")
        return JobEvent(idx=0, envelope=env, event=decode_event(env), seq=int(msg.seq or 0))
