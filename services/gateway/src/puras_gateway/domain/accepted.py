"""A job as the API accepted it, before the scheduler admitted it (J4)."""

from __future__ import annotations

from puras_common.events.commands import SubmitJob
from puras_common.events.types import JobRecord

__all__ = ["accepted_job"]


def accepted_job(cmd: SubmitJob) -> JobRecord:
    """What a read answers for a job whose submit still waits for the scheduler: queued,
    exactly as the submit itself answered."""
    return JobRecord(
        id=cmd.job_id,
        project_id=cmd.project_id,
        skill=cmd.skill,
        status="queued",
        inputs=cmd.inputs,
        deployment_id=cmd.deployment_id,
        created_at=cmd.submitted_at,
    )
