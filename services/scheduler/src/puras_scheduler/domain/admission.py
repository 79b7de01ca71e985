"""Admission of a submitted job: pure decisions, no I/O (ARCHITECTURE §4 Submit).

Given the command, the project's deployments and its credit balance, decide which events
to record and whether the job goes to the runners now, waits for credit, or fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from puras_common.events.commands import RunJob, SubmitJob
from puras_common.events.ids import job_queued_id, job_terminal_id
from puras_common.events.types import JobEvent, JobFailed, JobQueued
from puras_common.skills import SkillProblem, resolve
from puras_common.views.deployments import ProjectDeployments

__all__ = ["Admission", "admit"]


@dataclass(frozen=True, slots=True)
class Admission:
    outcome: Literal["dispatch", "hold", "fail"]
    events: list[tuple[JobEvent, str]]
    """Events to append to the job's subject, in order, with their event ids."""
    work: RunJob | None


def admit(
    cmd: SubmitJob, deployments: ProjectDeployments, balance_micros: int, now: datetime
) -> Admission:
    """Decide what happens to a submitted job (K3 second check, J7 credit gate)."""
    dep = deployments.active
    found = resolve(dep, cmd.skill, cmd.inputs, at="admission")
    spec, error = (None, found.message) if isinstance(found, SkillProblem) else (found, None)
    held = balance_micros <= 0
    queued = JobQueued(
        skill=cmd.skill,
        inputs=cmd.inputs,
        deployment_id=dep.id if dep else None,
        created_at=cmd.submitted_at,
        held=held and error is None,
        key_prefix=cmd.key_prefix,
    )
    events: list[tuple[JobEvent, str]] = [(queued, job_queued_id(cmd.job_id))]
    if error is not None:
        # Never ran: no attempt; the job's skill, inputs and deployment are on job.queued.
        failed = JobFailed(error=error, attempt=0, finished_at=now)
        events.append((failed, job_terminal_id(cmd.job_id)))
        return Admission(outcome="fail", events=events, work=None)
    # resolve found the skill, so there is a deployment
    assert dep is not None
    assert spec is not None
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
        max_cost_micros=cmd.max_cost_micros or spec.max_cost_micros,
        key_prefix=cmd.key_prefix,
        spend_limit=cmd.spend_limit,
        stop_agents_at_zero=cmd.stop_agents_at_zero,
    )
    return Admission(outcome="hold" if held else "dispatch", events=events, work=work)
