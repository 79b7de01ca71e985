"""The backstop for work that JetStream stopped delivering.

Runners fail a job with ``runner lost`` on the extra delivery after its last attempt. If
the runner holding that very delivery dies too, JetStream gives up on the message and
publishes a max-deliveries advisory instead (``entrypoints/advisories.py`` hands it
here); this turns it into the same ``job.failed`` (deduplicated by event id with a
runner's) and removes the dead message, so no job stays ``running`` forever.

Advisories are plain NATS messages: one missed while no scheduler runs is not replayed.
That is the residual risk, and it needs three failures in a row to matter.
"""

from __future__ import annotations

from puras_common.clock import Clock
from puras_common.events.ids import job_terminal_id
from puras_common.events.types import JobFailed, is_terminal_status
from puras_common.logging import get_logger
from puras_scheduler.app.ports import DeadWork, JobLog

__all__ = ["LostWork"]

log = get_logger(__name__)


class LostWork:
    def __init__(self, *, jobs: JobLog, dead: DeadWork, clock: Clock) -> None:
        self._jobs = jobs
        self._dead = dead
        self._clock = clock

    async def fail_lost(self, stream_seq: int, deliveries: int) -> None:
        """Fail the job of the dead work item unless it ended, then drop the item."""
        work = await self._dead.get(stream_seq)
        if work is None:
            return  # acked or removed meanwhile: nothing is stuck
        job, _ = await self._jobs.read(work.project_id, work.job_id)
        if job is None:
            # Never admitted: its job.queued was not stored (the scheduler sends both at
            # once). Its submit is still in the command queue and, admitted, dispatches
            # a work item of its own; a job.failed here would stand before its job.queued.
            log.warning("dead work of a job never admitted dropped", job_id=work.job_id)
        elif not is_terminal_status(job.status):
            # The job's skill, inputs and start are on its earlier events; the dead
            # message says how many deliveries it had, the last being the extra one.
            failed = JobFailed(
                error="runner lost", attempt=max(1, deliveries - 1), finished_at=self._clock.now()
            )
            await self._jobs.append(
                failed,
                project_id=work.project_id,
                job_id=work.job_id,
                event_id=job_terminal_id(work.job_id),
            )
            log.warning("job failed: runner lost on its last delivery", job_id=work.job_id)
        await self._dead.remove(stream_seq)
