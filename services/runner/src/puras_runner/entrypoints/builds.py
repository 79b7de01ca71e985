"""The build consumer: push-time venv builds (Z7) from ``PURAS_BUILDS``, a few at a time.

A request is acked once its outcome is reported to the gateways (which record it and the
activation the push asked for); one that cannot be handled (NATS away) is left unacked
and JetStream redelivers it after ``ack_wait``, to this runner or another.
A malformed request is terminated: no retry makes it readable. A request for a
deployment the log does not show is looked at again a few times (the gateway asks just
before it records the deployment), then dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import msgspec

from puras_common.builds import decode_build_request
from puras_common.bus import PullConsumer
from puras_common.logging import get_logger
from puras_runner.app.builds import DeploymentBuilds
from puras_runner.entrypoints.work import NatsWorkMessage

__all__ = ["BuildConsumer"]

log = get_logger(__name__)

UNKNOWN_RETRY_S: Final = 2.0
"""Delay before a request for a deployment the log does not show yet is looked at again."""


class BuildConsumer:
    def __init__(
        self, consumer: PullConsumer, builds: DeploymentBuilds, *, max_attempts: int
    ) -> None:
        self._max_attempts = max_attempts
        self._consumer = consumer
        self._builds = builds
        self._inflight: set[asyncio.Task[None]] = set()
        self._pulling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._pulling = asyncio.create_task(self._pull())

    async def stop(self) -> None:
        """Stop pulling; builds in hand are cancelled and redelivered to a runner later."""
        if self._pulling is not None:
            self._pulling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pulling
        with contextlib.suppress(Exception):
            await self._consumer.stop()
        for task in list(self._inflight):
            task.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _pull(self) -> None:
        while True:
            msg = await self._consumer.next()
            if msg is None:
                continue
            task = asyncio.create_task(self._one(NatsWorkMessage(msg)))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _one(self, msg: NatsWorkMessage) -> None:
        try:
            try:
                req = decode_build_request(msg.data)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.error("malformed build request terminated", error=str(exc))
                await msg.term()
                return
            if await self._builds.handle(req):
                await msg.ack()
            elif msg.attempt < self._max_attempts:
                await msg.nak(UNKNOWN_RETRY_S)
            else:
                log.info(
                    "build of a deployment the log does not have dropped",
                    project_id=req.project_id,
                    deployment_id=req.deployment_id,
                )
                await msg.term()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("build request failed in the runner; it will be redelivered")
        finally:
            with contextlib.suppress(Exception):
                await self._consumer.done()
