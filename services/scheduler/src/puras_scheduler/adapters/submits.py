"""Submits still waiting in ``PURAS_CMDS``, looked up by their subject."""

from __future__ import annotations

from puras_common.bus import Bus
from puras_common.bus.submits import pending_submit
from puras_common.events.commands import SubmitJob

__all__ = ["NatsPendingSubmits"]


class NatsPendingSubmits:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def get(self, project_id: str, job_id: str) -> SubmitJob | None:
        return await pending_submit(self._bus, project_id, job_id)
