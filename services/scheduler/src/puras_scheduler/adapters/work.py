"""Runnable jobs on ``work.<pool>`` in the ``PURAS_WORK`` stream."""

from __future__ import annotations

import msgspec

from puras_common.bus import Bus
from puras_common.events.commands import RunJob
from puras_common.events.ids import work_again_msg_id, work_msg_id
from puras_common.events.subjects import WORK_STREAM, work_subject

__all__ = ["NatsWorkQueue"]

_enc = msgspec.json.Encoder()


class NatsWorkQueue:
    def __init__(self, bus: Bus, pool: str) -> None:
        self._bus = bus
        self._subject = work_subject(pool)

    async def dispatch(self, work: RunJob, *, again: bool = False) -> None:
        msg_id = work_again_msg_id(work.job_id) if again else work_msg_id(work.job_id)
        await self._bus.publish_raw(
            self._subject, _enc.encode(work), msg_id=msg_id, stream=WORK_STREAM
        )
