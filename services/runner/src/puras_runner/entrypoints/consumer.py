"""The consume loop: long-lived pulls, one task per work item, a clean stop.

The pull consumer's credit is the runner's slot count, so at most ``slots`` items are
in hand at once and nothing is pulled that this runner cannot start right away. On stop,
pulling ends, running jobs get ``shutdown_grace_s`` to finish, and whatever is left is
killed and given back (nak) for another runner to take.
"""

from __future__ import annotations

import asyncio
import contextlib

from puras_common.logging import get_logger
from puras_runner.app.handler import JobHandler
from puras_runner.app.ports import WorkMessage, WorkSource

__all__ = ["RunnerService"]

log = get_logger(__name__)


class RunnerService:
    def __init__(self, source: WorkSource, handler: JobHandler, *, shutdown_grace_s: float) -> None:
        self._source = source
        self._handler = handler
        self._grace = shutdown_grace_s
        self._inflight: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> int:
        return len(self._inflight)

    async def run(self, stop: asyncio.Event) -> None:
        pulling = asyncio.create_task(self._pull())
        try:
            await stop.wait()
        finally:
            pulling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pulling
            await self._shutdown()

    async def _pull(self) -> None:
        while True:
            msg = await self._source.next()
            if msg is None:
                continue
            self._spawn(msg)
            for more in self._source.take_ready(1000):
                self._spawn(more)

    def _spawn(self, msg: WorkMessage) -> None:
        task = asyncio.create_task(self._one(msg))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _one(self, msg: WorkMessage) -> None:
        try:
            await self._handler.handle(msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Not acked: JetStream redelivers it after ack_wait (as a new attempt).
            log.exception("work item failed in the runner; it will be redelivered")
        finally:
            with contextlib.suppress(Exception):
                await self._source.done()

    async def _shutdown(self) -> None:
        await self._source.stop()
        for msg in self._source.take_ready(10_000):
            with contextlib.suppress(Exception):
                await msg.nak()
        if self._inflight:
            log.info("waiting for running jobs", jobs=len(self._inflight), grace_s=self._grace)
            _, pending = await asyncio.wait(set(self._inflight), timeout=self._grace)
            if pending:
                log.warning("giving back unfinished jobs", jobs=len(pending))
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        await self._handler.drain()
