"""Long-lived pulls from a durable JetStream consumer.

One inbox, standing pull requests (``expires`` seconds each, idle heartbeats), and a
credit of ``max_inflight`` messages shared between messages requested, queued and being
handled. A caller takes a message with :meth:`PullConsumer.next`, handles it, acks it and
calls :meth:`PullConsumer.done`, which frees its credit. There is no sleep between
requests: a message published while a request stands is delivered at once.

Freed credit is asked for again in batches, once half of it is free (or as soon as no
request stands): a request costs the server as much as a message, and asking after
every message doubled what a consumer sent it. A standing request is served message by
message as they come, not once its batch is full, so a lone client still gets its next
message at once, from what the last request still has to give.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from puras_common.bus import headers as H
from puras_common.logging import get_logger

__all__ = ["PullConsumer", "ensure_durable"]

log = get_logger(__name__)
_json = msgspec.json.Encoder()


async def ensure_durable(
    js: JetStreamContext,
    stream: str,
    durable: str,
    *,
    filter_subject: str,
    ack_wait_s: float,
    max_deliver: int,
    max_ack_pending: int = 10_000,
) -> None:
    """Create the durable pull consumer, or bring its tunables in line with the declaration.

    A consumer's filter cannot change in place; a mismatch there is a loud failure.
    """
    want = ConsumerConfig(
        durable_name=durable,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait_s,
        max_deliver=max_deliver,
        filter_subject=filter_subject,
        max_ack_pending=max_ack_pending,
        max_waiting=512,
    )
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        await js.add_consumer(stream, config=want)
        return
    cfg = info.config
    if cfg.filter_subject != filter_subject:
        raise RuntimeError(
            f"consumer {stream}/{durable} filters {cfg.filter_subject!r}, declared "
            f"{filter_subject!r}; delete it on purpose to change its filter"
        )
    if (
        float(cfg.ack_wait or 0) != float(ack_wait_s)
        or cfg.max_deliver != max_deliver
        or cfg.max_ack_pending != max_ack_pending
    ):
        await js.add_consumer(stream, config=want)  # an add with the same name updates


class PullConsumer:
    """Continuous pull from ``stream``/``durable`` with at most ``max_inflight`` messages out."""

    def __init__(
        self,
        nc: NatsClient,
        stream: str,
        durable: str,
        *,
        max_inflight: int,
        expires_s: float = 30.0,
        heartbeat_s: float = 5.0,
        api_prefix: str = "$JS.API",
    ) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self._nc = nc
        self._next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._max = max_inflight
        # Freed credit is asked for once this much of it is free (or nothing stands).
        self._refill_at = max(1, max_inflight // 2)
        self._expires_ns = int(expires_s * 1e9)
        self._hb_ns = int(heartbeat_s * 1e9)
        self._hb_s = heartbeat_s
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._requested = 0  # asked for, not yet delivered
        self._in_hand = 0  # delivered, not yet done()
        self._sub: Subscription | None = None
        self._inbox = ""
        self._last_activity = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        self._inbox = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)
        self._watchdog = asyncio.create_task(self._watch())
        await self._top_up()

    async def stop(self) -> None:
        self._closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def next(self, timeout: float | None = None) -> Msg | None:
        """The next message (``None`` on timeout). The caller must call :meth:`done` after."""
        try:
            if timeout is None:
                msg = await self._queue.get()
            else:
                msg = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        self._in_hand += 1
        return msg

    def take_ready(self, limit: int) -> list[Msg]:
        """Messages already delivered, without waiting (for batching after :meth:`next`)."""
        out: list[Msg] = []
        while len(out) < limit and not self._queue.empty():
            out.append(self._queue.get_nowait())
        self._in_hand += len(out)
        return out

    async def done(self, count: int = 1) -> None:
        """Release the credit of ``count`` handled messages (asked for again in batches)."""
        self._in_hand -= count
        await self._top_up()

    @property
    def free(self) -> int:
        return self._max - self._in_hand - self._queue.qsize() - self._requested

    @property
    def requested(self) -> int:
        """Messages asked for that the server has not delivered yet."""
        return self._requested

    async def _top_up(self) -> None:
        want = self.free
        if want <= 0 or self._closed or not self._nc.is_connected:
            return
        if want < self._refill_at and self._requested > 0:
            return  # a standing request still has messages to give: the next comes at once
        self._requested += want
        req: dict[str, Any] = {
            "batch": want,
            "expires": self._expires_ns,
            "idle_heartbeat": self._hb_ns,
        }
        await self._nc.publish(self._next_subject, _json.encode(req), reply=self._inbox)

    async def _on_msg(self, msg: Msg) -> None:
        self._last_activity = time.monotonic()
        hdrs = msg.headers or {}
        status = hdrs.get(H.STATUS) if not msg.data else None
        if status is None:
            self._requested = max(0, self._requested - 1)
            self._queue.put_nowait(msg)
            if self._requested == 0:
                # The last message asked for came: credit still free must stand in a
                # request now, not after the next done() (a burst would wait for it).
                await self._top_up()
            return
        if status == "100":
            return  # idle heartbeat: the standing request is alive
        if status in ("408", "409", "404"):
            # A request expired or was cut short; what it still owed us is in the headers.
            left = hdrs.get(H.PENDING_MESSAGES)
            if left is not None:
                self._requested = max(0, self._requested - int(left))
            elif status == "404":
                self._requested = 0
            if status == "409":
                desc = hdrs.get(H.DESCRIPTION, "")
                if "Consumer Deleted" in desc or "Consumer is push based" in desc:
                    log.error("pull consumer unusable", status=status, description=desc)
                elif "Leadership Change" not in desc and "Server Shutdown" not in desc:
                    log.warning("pull request ended", status=status, description=desc)
            await self._top_up()
            return
        log.warning("unexpected pull status", status=status, description=hdrs.get(H.DESCRIPTION))

    async def _watch(self) -> None:
        # Standing requests are lost if the connection drops or the server restarts: after
        # a reconnect, ask again at once (not a heartbeat period later: work waits
        # meanwhile); and when nothing (not even a heartbeat) has come for two heartbeat
        # periods, ask again too.
        reconnects = self._nc.stats.get("reconnects", 0)
        period = min(self._hb_s, 0.25)
        while not self._closed:
            await asyncio.sleep(period)
            now = self._nc.stats.get("reconnects", 0)
            if now != reconnects and self._nc.is_connected:
                reconnects = now
                self._requested = 0
                self._last_activity = time.monotonic()
                with contextlib.suppress(Exception):
                    await self._top_up()
                continue
            idle = time.monotonic() - self._last_activity
            if idle > 2 * self._hb_s + 1:
                self._requested = 0
                self._last_activity = time.monotonic()
                with contextlib.suppress(Exception):
                    await self._top_up()
