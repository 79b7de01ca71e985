"""The job view (JobOut) as a pure fold over a job's events."""

from __future__ import annotations

from typing import Any, assert_never

import msgspec

from puras_common.events.base import Envelope
from puras_common.events.types import (
    TERMINAL_STATUSES,
    AgentStarted,
    AnyEvent,
    JobCancelled,
    JobCharged,
    JobEvent,
    JobFailed,
    JobLogged,
    JobQueued,
    JobRecord,
    JobReleased,
    JobStarted,
    JobSucceeded,
    MediaUsageRecorded,
    ModelResponded,
    ToolCalled,
    ToolResulted,
    UsageRecorded,
)

__all__ = ["HELD_FOR_CREDIT", "apply_job_event", "job_out", "public_event_type", "public_payload"]


HELD_FOR_CREDIT = (
    "waiting for credit: the project's balance is zero or below; "
    "the job starts by itself once credit is granted"
)
"""``held_reason`` of a job the scheduler held (J7)."""


def public_event_type(internal: str) -> str:
    """``job.queued`` -> ``queued``: the type name the events API shows (J5)."""
    return internal[4:] if internal.startswith("job.") else internal


def apply_job_event(job: JobRecord | None, env: Envelope, ev: AnyEvent | None) -> JobRecord | None:
    """Fold one event into the job.

    The first terminal event ends the job and its status is final (J3): attempts and
    logs that come after it (a runner that had not yet seen the end) change nothing,
    nor does a second terminal event. Facts that are about an ended job rather than
    about its run (what it cost, once usage is recorded) still apply after the end.
    """
    if not isinstance(ev, JobEvent):
        return job  # unknown to this build, or not a job's event
    match ev:
        case JobQueued():
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
                held_reason=HELD_FOR_CREDIT if ev.held else None,
            )
        case JobStarted():
            if job is None or job.status in TERMINAL_STATUSES:
                return job
            return msgspec.structs.replace(
                job,
                status="running",
                held_reason=None,
                deployment_id=ev.deployment_id,
                attempts=max(job.attempts, ev.attempt),
                started_at=job.started_at or ev.started_at,
            )
        case JobSucceeded():
            if job is None or job.status in TERMINAL_STATUSES:
                return job
            return msgspec.structs.replace(
                job,
                status="succeeded",
                held_reason=None,
                result=ev.result,
                error=None,
                attempts=max(job.attempts, ev.attempt),
                started_at=ev.started_at or job.started_at,
                finished_at=ev.finished_at,
            )
        case JobFailed():
            if job is None or job.status in TERMINAL_STATUSES:
                return job
            return msgspec.structs.replace(
                job,
                status="failed",
                held_reason=None,
                result=None,
                error=ev.error,
                attempts=max(job.attempts, ev.attempt),
                started_at=ev.started_at or job.started_at,
                finished_at=ev.finished_at,
            )
        case JobCancelled():
            if job is None or job.status in TERMINAL_STATUSES:
                return job
            return msgspec.structs.replace(
                job,
                status="cancelled",
                held_reason=None,
                result=None,
                error=None,
                finished_at=ev.finished_at,
            )
        case JobCharged():
            # What it cost applies whenever billing records it, after the end too (J8).
            if job is None:
                return job
            return msgspec.structs.replace(job, cost_micros=job.cost_micros + ev.call.billed_micros)
        case JobReleased():
            if job is None or job.held_reason is None:
                return job
            return msgspec.structs.replace(job, held_reason=None)
        case JobLogged():
            return job
        case (
            AgentStarted()
            | ModelResponded()
            | ToolCalled()
            | ToolResulted()
            | UsageRecorded()
            | MediaUsageRecorded()
        ):
            # Progress of a run: shown as events, not part of JobOut (its cost comes
            # from billing's charges for the usage).
            return job
        case _:
            assert_never(ev)


def public_payload(
    ev: AnyEvent | None, raw: dict[str, Any] | None = None, *, job: JobRecord | None = None
) -> dict[str, Any]:
    """The ``payload`` of an event in the events API and SSE frames (J5).

    A terminal event shows the final JobOut: ``job`` is the job folded up to and
    including the event. Progress events carry what a client shows. An event type this
    build does not know keeps its stored data (``raw``).
    """
    if not isinstance(ev, JobEvent):
        return raw or {}
    match ev:
        case JobQueued():
            out: dict[str, Any] = {"skill": ev.skill, "deployment_id": ev.deployment_id}
            if ev.held:
                out["held"] = True
            return out
        case JobStarted():
            return {"attempt": ev.attempt, "deployment_id": ev.deployment_id}
        case JobLogged():
            return {"stream": ev.stream, "lines": ev.lines, "truncated": ev.truncated}
        case JobSucceeded() | JobFailed() | JobCancelled():
            if job is None:
                raise ValueError(f"the payload of {ev.type} is the folded job; none was given")
            return job_out(job)
        case JobReleased():
            return {}
        case AgentStarted():
            return {
                "model": ev.model,
                "provider": ev.provider,
                "tools": ev.tools,
                "max_steps": ev.max_steps,
            }
        case ModelResponded():
            return {
                "step": ev.step,
                "content": msgspec.to_builtins(ev.content),
                "stop_reason": ev.stop_reason,
                "usage": msgspec.to_builtins(ev.usage),
            }
        case ToolCalled():
            return {"step": ev.step, "call_id": ev.call_id, "name": ev.name, "input": ev.input}
        case ToolResulted():
            return {
                "step": ev.step,
                "call_id": ev.call_id,
                "name": ev.name,
                "content": msgspec.to_builtins(ev.content),
                "is_error": ev.is_error,
            }
        case JobCharged():
            call = ev.call
            return {
                "step": call.step,
                "provider": call.provider,
                "model": call.model,
                "billed_micros": call.billed_micros,
                # Z1: the spend so far, the job folded up to this charge.
                "spent_micros": job.cost_micros if job is not None else call.billed_micros,
            }
        case UsageRecorded():
            return {
                "step": ev.step,
                "provider": ev.provider,
                "model": ev.model,
                **msgspec.to_builtins(ev.usage),
            }
        case MediaUsageRecorded():
            return {
                "call": ev.call,
                "provider": ev.provider,
                "model": ev.model,
                "inputs": ev.inputs,
                "outputs": ev.outputs,
            }
        case _:
            assert_never(ev)


def job_out(job: JobRecord) -> dict[str, Any]:
    """The JobOut JSON object of J2 (timestamps as ISO 8601 strings)."""
    return msgspec.to_builtins(job)  # type: ignore[no-any-return]
