"""JetStream's max-deliveries advisories of the pool's work consumer, to the app.

A plain subscription (advisories are not stored): each one names the dead work item by
its stream sequence, and :class:`~puras_scheduler.app.lost_work.LostWork` deals with it.
"""

from __future__ import annotations

import contextlib

import msgspec
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from puras_common.bus import Bus
from puras_common.events.subjects import WORK_STREAM
from puras_common.logging import get_logger
from puras_scheduler.app.lost_work import LostWork

__all__ = ["LostWorkAdvisories", "advisory_subject"]

log = get_logger(__name__)


class MaxDeliveries(msgspec.Struct, frozen=True):
    """The part of ``io.nats.jetstream.advisory.v1.max_deliver`` we read."""

    stream: str
    consumer: str
    stream_seq: int
    deliveries: int


_advisory = msgspec.json.Decoder(MaxDeliveries)


def advisory_subject(durable: str) -> str:
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{WORK_STREAM}.{durable}"


class LostWorkAdvisories:
    def __init__(self, bus: Bus, durable: str, lost: LostWork) -> None:
        self._bus = bus
        self._durable = durable
        self._lost = lost
        self._sub: Subscription | None = None

    async def start(self) -> None:
        self._sub = await self._bus.nc.subscribe(
            advisory_subject(self._durable), cb=self._on_advisory
        )

    async def stop(self) -> None:
        """Stop listening; an advisory already received is handled to the end first (a
        job half-failed at shutdown would leave its dead work message behind)."""
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.drain()  # type: ignore[no-untyped-call]  # unannotated in nats-py

    async def _on_advisory(self, msg: Msg) -> None:
        try:
            adv = _advisory.decode(msg.data)
            await self._lost.fail_lost(adv.stream_seq, adv.deliveries)
        except Exception:
            log.exception("could not handle a max-deliveries advisory")
