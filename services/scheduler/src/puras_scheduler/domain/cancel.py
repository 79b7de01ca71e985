"""Cancelling a job (J6): pure decisions over the job's current state."""

from __future__ import annotations

from datetime import datetime

from puras_common.events.types import JobCancelled, JobRecord

__all__ = ["cancelled_event"]


def cancelled_event(job: JobRecord | None, now: datetime) -> JobCancelled | None:
    """The ``job.cancelled`` to append, or ``None`` when there is nothing to cancel.

    A queued job ends at once; for a running one, this event is the signal: the runner
    watching the job's subject kills its process and records nothing more. A job that
    already ended stays as it ended (terminal is final, J3).
    """
    if job is None or job.status not in ("queued", "running"):
        return None
    return JobCancelled(
        job=JobRecord(
            id=job.id,
            project_id=job.project_id,
            skill=job.skill,
            status="cancelled",
            inputs=job.inputs,
            result=None,
            error=None,
            cost_micros=job.cost_micros,
            deployment_id=job.deployment_id,
            attempts=job.attempts,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=now,
        )
    )
