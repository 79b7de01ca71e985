"""Commands to the scheduler on ``PURAS_CMDS``, and submits it has not admitted yet.

A submit goes to its own subject (``cmd.scheduler.submit.<project>.<job>``), so any
gateway replica can tell a job it never saw from one that is accepted and waiting for
the scheduler: the command stays in the work queue until the scheduler has appended
``job.queued`` and acked it.
"""

from __future__ import annotations

from puras_common.bus import Bus
from puras_common.bus.submits import pending_submit
from puras_common.events.commands import CancelJob, SubmitJob, encode_command
from puras_common.events.ids import cancel_msg_id
from puras_common.events.subjects import CMD_SCHEDULER_CANCEL, CMDS_STREAM, submit_subject

__all__ = ["SchedulerCommands"]


class SchedulerCommands:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def submit(self, cmd: SubmitJob) -> None:
        await self._bus.publish_raw(
            submit_subject(cmd.project_id, cmd.job_id),
            encode_command(cmd),
            # The scheduler admits a job id once; this also drops a repeat within the
            # stream's duplicate window before it reaches the scheduler.
            msg_id=cmd.job_id,
            stream=CMDS_STREAM,
        )

    async def cancel(self, cmd: CancelJob) -> None:
        await self._bus.publish_raw(
            CMD_SCHEDULER_CANCEL,
            encode_command(cmd),
            msg_id=cancel_msg_id(cmd.job_id),
            stream=CMDS_STREAM,
        )

    async def pending_submit(self, project_id: str, job_id: str) -> SubmitJob | None:
        """The job's submit while it waits in the queue, else ``None`` (never submitted,
        or admitted already: then its events are in the log)."""
        return await pending_submit(self._bus, project_id, job_id)
