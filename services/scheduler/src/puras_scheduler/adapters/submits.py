"""Submits still waiting in ``PURAS_CMDS``, looked up by their subject."""

from __future__ import annotations

import msgspec
from nats.js.errors import NotFoundError

from puras_common.bus import Bus
from puras_common.events.commands import SubmitJob, decode_command
from puras_common.events.subjects import CMDS_STREAM, submit_subject

__all__ = ["NatsPendingSubmits"]


class NatsPendingSubmits:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def get(self, project_id: str, job_id: str) -> SubmitJob | None:
        try:
            msg = await self._bus.js.get_last_msg(CMDS_STREAM, submit_subject(project_id, job_id))
        except NotFoundError:
            return None
        try:
            cmd = decode_command(msg.data or b"")
        except (msgspec.DecodeError, msgspec.ValidationError):
            return None  # the command loop drops it too
        if not isinstance(cmd, SubmitJob) or cmd.project_id != project_id:
            return None
        return cmd
