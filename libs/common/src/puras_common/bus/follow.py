"""Ordered reads of the event log: replay from a sequence, then follow live.

Built on JetStream's ordered consumer (ephemeral, flow-controlled, recreated from the
last seen sequence on any gap), so a follower never misses or repeats a message. Used by
projectors (starting after their checkpoint) and by in-memory views (starting at 1).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy

from puras_common.events.subjects import EVENTS_STREAM

__all__ = ["EventFollower", "RawEvent"]


@dataclass(frozen=True, slots=True)
class RawEvent:
    """A message of the event log, undecoded."""

    seq: int
    subject: str
    data: bytes
    pending: int
    """Messages matching the filter still after this one when it was delivered."""


class EventFollower:
    """Deliver every message matching ``filter_subjects`` from ``start_seq`` on, in order."""

    def __init__(
        self,
        js: JetStreamContext,
        filter_subjects: list[str],
        *,
        start_seq: int = 1,
        stream: str = EVENTS_STREAM,
    ) -> None:
        self._js = js
        self._filters = filter_subjects
        self._start = max(1, start_seq)
        self._stream = stream
        self._queue: asyncio.Queue[RawEvent] = asyncio.Queue()
        self._sub: JetStreamContext.PushSubscription | None = None
        self.initial_pending = 0
        self.last_seq = self._start - 1

    async def start(self) -> None:
        cfg = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self._start,
            filter_subjects=self._filters if len(self._filters) > 1 else None,
            inactive_threshold=300.0,
        )
        self._sub = await self._js.subscribe(
            self._filters[0],
            stream=self._stream,
            ordered_consumer=True,
            config=cfg,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            cb=self._on_msg,
            idle_heartbeat=2.0,
            pending_msgs_limit=-1,
            pending_bytes_limit=-1,
        )
        info = await self._sub.consumer_info()
        # What matched at start and the caller has not taken yet: still pending on the
        # server, or delivered already (a push consumer starts at once) and queued here.
        delivered = int(info.delivered.consumer_seq or 0) if info.delivered else 0
        self.initial_pending = int(info.num_pending or 0) + delivered

    async def position(self) -> tuple[int, int]:
        """``(last delivered stream seq, matching messages not yet delivered)`` now."""
        if self._sub is None:
            raise RuntimeError("follower not started")
        info = await self._sub.consumer_info()
        delivered = int(info.delivered.stream_seq or 0) if info.delivered else 0
        return delivered, int(info.num_pending or 0)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    async def _on_msg(self, msg: Msg) -> None:
        md = msg.metadata
        self._queue.put_nowait(
            RawEvent(
                seq=md.sequence.stream,
                subject=msg.subject,
                data=msg.data,
                pending=int(md.num_pending or 0),
            )
        )

    async def next_batch(self, max_n: int, timeout: float | None = None) -> list[RawEvent]:
        """Wait for at least one message (up to ``timeout``), then take what is ready."""
        try:
            first = (
                await self._queue.get()
                if timeout is None
                else await asyncio.wait_for(self._queue.get(), timeout)
            )
        except TimeoutError:
            return []
        batch = [first]
        while len(batch) < max_n and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        self.last_seq = batch[-1].seq
        return batch
