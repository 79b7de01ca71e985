"""Work items from ``PURAS_WORK`` as the handler sees them (:class:`WorkMessage`).

The JetStream deliveries of ``work.<pool>`` come through the shared durable pull
consumer; this is the only place that touches them as NATS messages.
"""

from __future__ import annotations

from collections.abc import Mapping

from nats.aio.msg import Msg

from puras_common.bus import PullConsumer

__all__ = ["NatsWorkMessage", "NatsWorkSource"]


class NatsWorkMessage:
    """A JetStream delivery of ``work.<pool>`` as the handler sees it."""

    __slots__ = ("_msg",)

    def __init__(self, msg: Msg) -> None:
        self._msg = msg

    @property
    def data(self) -> bytes:
        return bytes(self._msg.data)

    @property
    def headers(self) -> Mapping[str, str] | None:
        return self._msg.headers

    @property
    def attempt(self) -> int:
        return int(self._msg.metadata.num_delivered)

    async def ack(self) -> None:
        await self._msg.ack()

    async def nak(self, delay: float | None = None) -> None:
        await self._msg.nak(delay)

    async def term(self) -> None:
        await self._msg.term()

    async def in_progress(self) -> None:
        await self._msg.in_progress()


class NatsWorkSource:
    """:class:`~puras_runner.app.ports.WorkSource` over a :class:`PullConsumer`."""

    def __init__(self, consumer: PullConsumer) -> None:
        self._consumer = consumer

    async def next(self, timeout: float | None = None) -> NatsWorkMessage | None:
        msg = await self._consumer.next(timeout)
        return NatsWorkMessage(msg) if msg is not None else None

    async def done(self) -> None:
        await self._consumer.done()

    def take_ready(self, limit: int) -> list[NatsWorkMessage]:
        return [NatsWorkMessage(m) for m in self._consumer.take_ready(limit)]

    async def stop(self) -> None:
        await self._consumer.stop()
