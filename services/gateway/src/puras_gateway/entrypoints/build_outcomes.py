"""The gateways' consumer of push-time build outcomes (Z7), reported by the runners on
``PURAS_CMDS`` (``cmd.gateway.built.<project>``), shared by every gateway replica.

An outcome is acked once it and the activation its push asked for are recorded; one
that cannot be recorded now (NATS away, the subject changing under every retry) is left
unacked and redelivered after the durable's ``ack_wait``. An outcome of a deployment this
gateway does not show yet is looked at again a few times, then dropped (the deployment
was deleted). A malformed one is terminated: no retry makes it readable.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import msgspec
from nats.aio.msg import Msg

from puras_common.builds import decode_build_outcome
from puras_common.bus import PullConsumer
from puras_common.logging import get_logger
from puras_gateway.app.deployments import DeploymentsService

__all__ = ["BuildOutcomeConsumer"]

log = get_logger(__name__)

UNSEEN_RETRY_S: Final = 2.0
"""Delay before an outcome of a deployment not shown yet is looked at again."""
MAX_UNSEEN_ATTEMPTS: Final = 30
"""Deliveries of such an outcome before it is dropped (about a minute)."""


class BuildOutcomeConsumer:
    def __init__(self, consumer: PullConsumer, deployments: DeploymentsService) -> None:
        self._consumer = consumer
        self._deployments = deployments
        self._pulling: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._pulling = asyncio.create_task(self._pull())

    async def stop(self) -> None:
        """Stop pulling; an outcome in hand is redelivered to a gateway later."""
        if self._pulling is not None:
            self._pulling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pulling
        with contextlib.suppress(Exception):
            await self._consumer.stop()

    async def _pull(self) -> None:
        # One at a time: outcomes are rare, and each waits on the project's subject.
        while True:
            msg = await self._consumer.next()
            if msg is None:
                continue
            try:
                await self._one(msg)
            finally:
                with contextlib.suppress(Exception):
                    await self._consumer.done()

    async def _one(self, msg: Msg) -> None:
        try:
            outcome = decode_build_outcome(bytes(msg.data))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("malformed build outcome terminated", error=str(exc))
            await msg.term()
            return
        try:
            recorded = await self._deployments.record_build(outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "build outcome not recorded; it will be redelivered",
                deployment_id=outcome.deployment_id,
            )
            return
        if recorded:
            await msg.ack()
        elif int(msg.metadata.num_delivered) < MAX_UNSEEN_ATTEMPTS:
            await msg.nak(UNSEEN_RETRY_S)
        else:
            log.info(
                "build outcome of a deployment the log does not have dropped",
                project_id=outcome.project_id,
                deployment_id=outcome.deployment_id,
            )
            await msg.term()
