"""Work items from ``PURAS_WORK`` through the shared durable pull consumer."""

from __future__ import annotations

from puras_common.bus import PullConsumer
from puras_runner.adapters.event_log import NatsWorkMessage

__all__ = ["NatsWorkSource"]


class NatsWorkSource:
    """:class:`~puras_runner.app.service.WorkSource` over a :class:`PullConsumer`."""

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
