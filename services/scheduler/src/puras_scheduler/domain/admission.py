"""Admission of a submitted job: pure decisions, no I/O (ARCHITECTURE §4 Submit).

Given the command, the project's deployments and its credit balance, decide which events
to record and whether the job goes to the runners now, waits for credit, or fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from puras_common.events.base import Event
from puras_common.events.commands import RunJob, SubmitJob
from puras_common.events.types import JobFailed, JobQueued, JobRecord
from puras_common.schemas import validate_instance
from puras_common.views.deployments import ProjectDeployments

__all__ = ["Admission", "admit", "queued_event_id", "terminal_event_id", "work_msg_id"]


def queued_event_id(job_id: str) -> str:
    return f"{job_id}:queued"


def terminal_event_id(job_id: str) -> str:
    return f"{job_id}:terminal"


def work_msg_id(job_id: str) -> str:
    return f"{job_id}:work"


@dataclass(frozen=True, slots=True)
class Admission:
    outcome: Literal["dispatch", "hold", "fail"]
    events: list[tuple[Event, str]]
    """Events to append to the job's subject, in order, with their event ids."""
    work: RunJob | None


def admit(
    cmd: SubmitJob, deployments: ProjectDeployments, balance_micros: int, now: datetime
) -> Admission:
    """Decide what happens to a submitted job (K3 second check, J7 credit gate)."""
    dep = deployments.active
    error: str | None = None
    spec = None
    if dep is None:
        error = (
            f"unknown skill {cmd.skill!r}: the project has no active deployment "
            "(it was deleted or never pushed)"
        )
    else:
        spec = dep.skills.get(cmd.skill)
        if spec is None:
            error = (
                f"unknown skill {cmd.skill!r} in the active deployment {dep.id}; its skills: "
                + ", ".join(sorted(dep.skills))
            )
        elif spec.input_schema is not None:
            problem = validate_instance(spec.input_schema, cmd.inputs, root="inputs")
            if problem is not None:
                error = f"inputs do not match the skill's input_schema: {problem}"
    held = balance_micros <= 0
    queued = JobQueued(
        skill=cmd.skill,
        inputs=cmd.inputs,
        deployment_id=dep.id if dep else None,
        created_at=cmd.submitted_at,
        held=held and error is None,
    )
    events: list[tuple[Event, str]] = [(queued, queued_event_id(cmd.job_id))]
    if error is not None or dep is None or spec is None:
        failed = JobRecord(
            id=cmd.job_id,
            project_id=cmd.project_id,
            skill=cmd.skill,
            status="failed",
            inputs=cmd.inputs,
            error=error,
            deployment_id=dep.id if dep else None,
            attempts=0,
            created_at=cmd.submitted_at,
            finished_at=now,
        )
        events.append((JobFailed(job=failed), terminal_event_id(cmd.job_id)))
        return Admission(outcome="fail", events=events, work=None)
    work = RunJob(
        job_id=cmd.job_id,
        project_id=cmd.project_id,
        skill=cmd.skill,
        inputs=cmd.inputs,
        deployment_id=dep.id,
        created_at=cmd.submitted_at,
        bundle_key=dep.bundle.key,
        bundle_sha256=dep.bundle.sha256,
        requirements_sha256=dep.requirements_sha256,
        timeout_seconds=spec.timeout_seconds,
    )
    return Admission(outcome="hold" if held else "dispatch", events=events, work=work)
