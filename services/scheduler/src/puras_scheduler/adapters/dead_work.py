"""Dead work items, read and removed from the ``PURAS_WORK`` stream by sequence."""

from __future__ import annotations

import msgspec
from nats.js.errors import APIError, NotFoundError

from puras_common.bus import Bus
from puras_common.events.commands import RunJob
from puras_common.events.subjects import WORK_STREAM

__all__ = ["NatsDeadWork"]

_run = msgspec.json.Decoder(RunJob)

# JetStream API error code of a message delete whose message is gone (it comes back as a
# server error, not a "not found").
_NO_MESSAGE_FOUND = 10057


class NatsDeadWork:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def get(self, stream_seq: int) -> RunJob | None:
        try:
            raw = await self._bus.js.get_msg(WORK_STREAM, seq=stream_seq)
        except NotFoundError:
            return None
        return _run.decode(raw.data or b"")

    async def remove(self, stream_seq: int) -> None:
        try:
            await self._bus.js.delete_msg(WORK_STREAM, stream_seq)
        except NotFoundError:
            return
        except APIError as exc:
            if exc.err_code != _NO_MESSAGE_FOUND:
                raise
