"""Submits the API accepted that no scheduler has admitted yet, looked up in ``PURAS_CMDS``.

A submit has a subject of its own (``cmd.scheduler.submit.<project>.<job>``) and stays
in the work queue until a scheduler has appended its ``job.queued`` and acked it: the
gateway reads it to answer for a job right after its submit (J4), the scheduler to admit
a job whose cancel came first.
"""

from __future__ import annotations

import msgspec
from nats.js.errors import NotFoundError

from puras_common.bus.client import Bus
from puras_common.events.commands import SubmitJob, decode_command
from puras_common.events.subjects import CMDS_STREAM, submit_subject

__all__ = ["pending_submit"]


async def pending_submit(bus: Bus, project_id: str, job_id: str) -> SubmitJob | None:
    """The job's submit while it waits in the queue, else ``None`` (never submitted, or
    admitted already: then its events are in the log)."""
    try:
        # Not a direct get: the stream leader answers, so a submit acked to any replica
        # is seen (PURAS_CMDS does not allow direct gets either).
        msg = await bus.js.get_last_msg(CMDS_STREAM, submit_subject(project_id, job_id))
    except NotFoundError:
        return None
    try:
        cmd = decode_command(msg.data or b"")
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None  # the scheduler's command loop drops it too
    if not isinstance(cmd, SubmitJob) or cmd.project_id != project_id:
        return None
    return cmd
