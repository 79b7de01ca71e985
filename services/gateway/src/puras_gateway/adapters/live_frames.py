"""A job's live frames over core NATS (``live.<project>.job.<job>``, Z5): the gateway's
``LiveFrames``.

A plain subscription per attached stream, no JetStream: nothing is stored, and a frame
published while nobody listens is gone (the log's ``job.model_response`` holds the whole
text). Frames wait here until the stream takes them; a stream whose client reads slowly
or not at all keeps only the newest :data:`MAX_PENDING` frames (and at most
:data:`MAX_PENDING_BYTES` of text), so an idle client cannot make the gateway hold
without bound what the next response supersedes anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Final

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from puras_common.bus import Bus
from puras_common.events.subjects import live_subject
from puras_gateway.domain.live import ModelDelta, parse_live_frame

__all__ = ["MAX_PENDING", "MAX_PENDING_BYTES", "LiveJobFrames", "LiveJobTail"]

MAX_PENDING: Final = 512
"""Frames held for one stream; older ones are dropped first."""
MAX_PENDING_BYTES: Final = 1024 * 1024
"""Text held for one stream, in UTF-8 bytes; older frames are dropped first."""


class LiveJobTail:
    """The frames of one job published since :meth:`LiveJobFrames.follow`, bounded."""

    def __init__(self, max_pending: int = MAX_PENDING, max_bytes: int = MAX_PENDING_BYTES) -> None:
        self._pending: deque[tuple[ModelDelta, int]] = deque()
        self._bytes = 0
        self._max = max_pending
        self._max_bytes = max_bytes
        self._ready = asyncio.Event()
        self._sub: Subscription | None = None
        self.dropped = 0
        """Frames dropped because the stream did not take them in time."""

    def offer(self, data: bytes) -> None:
        delta = parse_live_frame(data)
        if delta is None:
            return
        size = len(data)
        self._pending.append((delta, size))
        self._bytes += size
        while len(self._pending) > self._max or (
            self._bytes > self._max_bytes and len(self._pending) > 1
        ):
            _, old = self._pending.popleft()
            self._bytes -= old
            self.dropped += 1
        self._ready.set()

    def bind(self, sub: Subscription) -> None:
        """The subscription feeding this tail (ended by :meth:`close`)."""
        self._sub = sub

    async def wait(self) -> None:
        await self._ready.wait()

    def drain(self) -> list[ModelDelta]:
        out = [d for d, _ in self._pending]
        self._pending.clear()
        self._bytes = 0
        self._ready.clear()
        return out

    async def close(self) -> None:
        self._pending.clear()
        self._bytes = 0
        if self._sub is not None:
            with contextlib.suppress(Exception):  # a closed connection has none left
                await self._sub.unsubscribe()


class LiveJobFrames:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def follow(self, project_id: str, job_id: str) -> LiveJobTail:
        tail = LiveJobTail()

        async def _cb(msg: Msg) -> None:
            tail.offer(msg.data)

        # The callback only moves a frame into the bounded buffer, so the client's own
        # pending queue stays short; its limits are the client's defaults. Like the job
        # tail's, the subscription is in place at the server before the replay that
        # follows on this connection is answered.
        tail.bind(await self._bus.nc.subscribe(live_subject(project_id, job_id), cb=_cb))
        return tail
