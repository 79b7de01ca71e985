"""Reading one job's events straight from the log: replay and live tail.

A job's events are the messages on ``ev.<project>.job.<id>``; an event's position (its
``id`` in the events API) is its 1-based place among them. Replay walks the subject
with direct gets (JetStream keeps a per-subject index); live events come from a plain
subscription in place *before* the replay (or the submit), de-duplicated by event id, so
nothing published in between is lost or shown twice.

The subscription is shared: one per project (``ev.<project>.job.*``) for the whole
process, made when a tail of that project first needs it and kept while tails come (it
goes after :data:`FEED_LINGER_S` without one). A tail is then an entry in a table, not a
SUB and an UNSUB on the wire and a subscription (with its own task) in the client: a
wait or a stream costs no NATS subscription, so one process holds many thousands of
streams. The price is fan-out: a process gets every job event of a project it follows,
including those of jobs nobody here waits on, and drops them after a table look-up.
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
from puras_common.events.subjects import AGG_JOB, EVENTS_STREAM, aggregate_filter, event_subject
from puras_common.logging import get_logger
from puras_gateway.domain.job_events import JobEvent

__all__ = ["FEED_LINGER_S", "JobLog", "JobTail"]

log = get_logger(__name__)

FEED_LINGER_S = 30.0
"""How long a project's shared subscription outlives its last tail: a client sending
sync jobs one after another keeps one subscription instead of making one per job."""


class JobTail:
    """Live events of one job, fed by a subscription in place before anything was
    published. One consumer: :meth:`wait` is not called by two tasks at once."""

    def __init__(self, subject: str = "", feed: _ProjectFeed | None = None) -> None:
        self.subject = subject
        self._feed = feed
        # Messages in arrival order. The subscription's callback appends synchronously,
        # so a message is here as soon as any later message (of any subscription on the
        # connection) has been handed to its own callback: a stream that compares live
        # frames with the events relies on that order.
        self._arrived: deque[bytes] = deque()
        self._waiter: asyncio.Future[bool] | None = None
        self._seen: set[str] = set()
        self.count = 0

    def offer(self, data: bytes) -> None:
        self._arrived.append(data)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(True)

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
        return None

    async def wait(self, timeout: float | None) -> bool:
        """Whether a message arrived (maybe a duplicate) before ``timeout`` passed."""
        if self._arrived:
            return True
        if timeout is not None and timeout <= 0:
            return False
        # A bare future and a timer: no task per wait (``asyncio.wait_for`` makes one).
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter)
        self._waiter = waiter
        try:
            return await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    async def next(self, timeout: float | None) -> JobEvent | None:
        """The next new event, or ``None`` when ``timeout`` passes first."""
        ev = self.poll()
        if ev is not None:
            return ev
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while (ev := self.poll()) is None:
            left = None if deadline is None else deadline - loop.time()
            if (left is not None and left <= 0) or not await self.wait(left):
                return None
        return ev

    async def close(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.remove(self)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class _ProjectFeed:
    """One project's job events, dispatched by subject to the tails waiting on them."""

    def __init__(self, owner: JobLog, project_id: str) -> None:
        self._owner = owner
        self.project_id = project_id
        self.tails: dict[str, list[JobTail]] = {}
        self.sub: Subscription | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle: asyncio.TimerHandle | None = None

    async def deliver(self, msg: Msg) -> None:
        tails = self.tails.get(msg.subject)
        if tails is not None:
            for t in tails:
                t.offer(msg.data)

    def add(self, tail: JobTail) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self.tails.setdefault(tail.subject, []).append(tail)

    def remove(self, tail: JobTail) -> None:
        tails = self.tails.get(tail.subject)
        if tails is None:
            return
        with contextlib.suppress(ValueError):
            tails.remove(tail)
        if not tails:
            del self.tails[tail.subject]
        if not self.tails and self._idle is None:
            self._idle = asyncio.get_running_loop().call_later(
                self._owner.linger_s, self._owner.retire, self
            )


class JobLog:
    def __init__(self, bus: Bus, *, linger_s: float = FEED_LINGER_S) -> None:
        self._bus = bus
        self.linger_s = linger_s
        self._feeds: dict[str, _ProjectFeed] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def tail(self, project_id: str, job_id: str) -> JobTail:
        """A tail of the job, its subscription in place on return: whatever the caller
        publishes next (on this connection) is ordered after it."""
        feed = self._feeds.get(project_id)
        if feed is None:
            feed = _ProjectFeed(self, project_id)
            self._feeds[project_id] = feed
            await self._subscribe(feed)
        elif not feed.ready.done():
            await asyncio.shield(feed.ready)  # another request is making it
        tail = JobTail(event_subject(project_id, AGG_JOB, job_id), feed)
        feed.add(tail)
        return tail

    async def _subscribe(self, feed: _ProjectFeed) -> None:
        try:
            feed.sub = await self._bus.nc.subscribe(
                aggregate_filter(AGG_JOB, feed.project_id),
                cb=feed.deliver,
                pending_msgs_limit=-1,
                pending_bytes_limit=-1,
            )
        except BaseException as exc:
            if self._feeds.get(feed.project_id) is feed:
                del self._feeds[feed.project_id]
            feed.ready.set_exception(exc)
            feed.ready.exception()  # retrieved: nobody else may be waiting on it
            raise
        feed.ready.set_result(None)

    def retire(self, feed: _ProjectFeed) -> None:
        """End ``feed``'s subscription if it is still idle (a tail may have come)."""
        if feed.tails or self._feeds.get(feed.project_id) is not feed:
            return
        del self._feeds[feed.project_id]
        if feed.sub is not None:
            task = asyncio.get_running_loop().create_task(_unsubscribe(feed.sub))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def following(self) -> list[str]:
        """The projects this process holds a subscription for (tests, diagnostics)."""
        return sorted(self._feeds)

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


async def _unsubscribe(sub: Subscription) -> None:
    try:
        await sub.unsubscribe()
    except Exception as exc:  # the connection is going anyway: nothing to clean up
        log.debug("could not end a job feed", error=str(exc))
