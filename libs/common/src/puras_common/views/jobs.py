"""The job view (JobOut) as a pure fold over a job's events."""

from __future__ import annotations

from typing import Any

import msgspec

from puras_common.events.base import Envelope, Event
from puras_common.events.types import (
    JobCancelled,
    JobFailed,
    JobLogged,
    JobQueued,
    JobRecord,
    JobReleased,
    JobStarted,
    JobSucceeded,
)

__all__ = ["apply_job_event", "job_out", "public_event_type", "public_payload"]


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


def public_payload(ev: Event | None, raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``payload`` of an event in the events API and SSE frames (J5).

    Terminal events carry the final JobOut; progress events carry what a client shows.
    An event type this build does not know keeps its stored data (``raw``).
    """
    if isinstance(ev, JobQueued):
        out: dict[str, Any] = {"skill": ev.skill, "deployment_id": ev.deployment_id}
        if ev.held:
            out["held"] = True
        return out
    if isinstance(ev, JobStarted):
        return {"attempt": ev.attempt, "deployment_id": ev.deployment_id}
    if isinstance(ev, JobLogged):
        return {"stream": ev.stream, "lines": ev.lines, "truncated": ev.truncated}
    if isinstance(ev, JobSucceeded | JobFailed | JobCancelled):
        return job_out(ev.job)
    if isinstance(ev, JobReleased):
        return {}
    return raw or {}


def job_out(job: JobRecord) -> dict[str, Any]:
    """The JobOut JSON object of J2 (timestamps as ISO 8601 strings)."""
    return msgspec.to_builtins(job)  # type: ignore[no-any-return]
