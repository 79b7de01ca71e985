"""Serving a durable pull consumer: every message handled concurrently, until stopped.

What is ready is handed to the handler at once, each message in its own task; the
handler acks (or terminates) its message once its effects are stored. A handler that
raises leaves its message unacked, so JetStream redelivers it after the consumer's ack
wait: handlers must be safe to repeat. On stop, pulling ends and the messages in hand
get a bounded time to finish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg

from puras_common.bus.pull import PullConsumer
from puras_common.logging import get_logger

__all__ = ["serve_pull"]

log = get_logger(__name__)


async def serve_pull(
    consumer: PullConsumer,
    handle: Callable[[Msg], Awaitable[None]],
    stop: asyncio.Event,
    *,
    finish_s: float = 10.0,
) -> None:
    inflight: set[asyncio.Task[None]] = set()

    async def one(msg: Msg) -> None:
        try:
            await handle(msg)
        except Exception:
            log.exception("message failed; it will be redelivered", subject=msg.subject)
        finally:
            await consumer.done()

    async def pull() -> None:
        while True:
            first = await consumer.next()
            if first is None:
                continue
            for m in (first, *consumer.take_ready(1000)):
                t = asyncio.create_task(one(m))
                inflight.add(t)
                t.add_done_callback(inflight.discard)

    pulling = asyncio.create_task(pull())
    await stop.wait()
    pulling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pulling
    if inflight:
        await asyncio.wait(inflight, timeout=finish_s)
