"""The command loop: long-lived pulls from ``PURAS_CMDS``, commands handled concurrently.

Commands of different jobs are independent; what is ready is handled concurrently and
each command is acked once its own effects are stored.
"""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.msg import Msg

from puras_common.bus import PullConsumer
from puras_common.logging import get_logger
from puras_scheduler.app.handlers import Scheduler

__all__ = ["run_commands"]

log = get_logger(__name__)


async def run_commands(consumer: PullConsumer, scheduler: Scheduler, stop: asyncio.Event) -> None:
    inflight: set[asyncio.Task[None]] = set()

    async def one(msg: Msg) -> None:
        try:
            await scheduler.handle(msg)
        except Exception:
            # Not acked: JetStream redelivers after ack_wait; handlers are idempotent.
            log.exception("command failed; it will be redelivered")
        finally:
            await consumer.done()

    async def loop() -> None:
        while True:
            first = await consumer.next()
            if first is None:
                continue
            for m in (first, *consumer.take_ready(1000)):
                t = asyncio.create_task(one(m))
                inflight.add(t)
                t.add_done_callback(inflight.discard)

    pulling = asyncio.create_task(loop())
    await stop.wait()
    pulling.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pulling
    if inflight:
        await asyncio.wait(inflight, timeout=10)
