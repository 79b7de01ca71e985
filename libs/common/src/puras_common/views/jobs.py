"""The job view (JobOut) as a pure fold over a job's events."""

from __future__ import annotations

from puras_common.events.base import Envelope, Event
from puras_common.events.types import (
    JobCancelled,
    JobFailed,
    JobQueued,
    JobRecord,
    JobStarted,
    JobSucceeded,
)

__all__ = ["apply_job_event", "public_event_type"]


def public_event_type(internal: str) -> str:
    """``job.queued`` -> ``queued``: the type name the events API shows (J5)."""
    return internal[4:] if internal.startswith("job.") else internal


def apply_job_event(job: JobRecord | None, env: Envelope, ev: Event | None) -> JobRecord | None:
    """Fold one event into the job; terminal states are final (J3)."""
    if isinstance(ev, JobQueued):
        if job is not None:
            return job
        return JobRecord(
            id=env.aggregate_id,
            project_id=env.project_id,
            skill=ev.skill,
            status="queued",
            inputs=ev.inputs,
            deployment_id=ev.deployment_id,
            created_at=ev.created_at,
        )
    if job is None or job.status in ("succeeded", "failed", "cancelled"):
        return job
    if isinstance(ev, JobStarted):
        return JobRecord(
            id=job.id,
            project_id=job.project_id,
            skill=job.skill,
            status="running",
            inputs=job.inputs,
            result=job.result,
            error=job.error,
            cost_micros=job.cost_micros,
            deployment_id=ev.deployment_id,
            attempts=max(job.attempts, ev.attempt),
            created_at=job.created_at,
            started_at=job.started_at or ev.started_at,
            finished_at=None,
        )
    if isinstance(ev, JobSucceeded | JobFailed | JobCancelled):
        return ev.job
    return job
