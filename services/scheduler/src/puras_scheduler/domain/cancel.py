"""Cancelling a job (J6): pure decisions over the job's current state."""

from __future__ import annotations

from datetime import datetime

from puras_common.events.types import JobCancelled, JobRecord, is_terminal_status

__all__ = ["cancelled_event"]


def cancelled_event(job: JobRecord | None, now: datetime) -> JobCancelled | None:
    """The ``job.cancelled`` to append, or ``None`` when there is nothing to cancel.

    A queued job ends at once; for a running one, this event is the signal: the runner
    watching the job's subject kills its process and records nothing more. A job that
    already ended stays as it ended (terminal is final, J3).
    """
    if job is None or is_terminal_status(job.status):
        return None
    return JobCancelled(finished_at=now)
