"""A job's current state, folded from its events in the log."""

from __future__ import annotations

from puras_common.bus import Bus
from puras_common.events.base import decode_envelope, decode_event
from puras_common.events.subjects import AGG_JOB, event_subject
from puras_common.events.types import JobRecord
from puras_common.views.jobs import apply_job_event

__all__ = ["read_job"]


async def read_job(bus: Bus, project_id: str, job_id: str) -> tuple[JobRecord | None, int]:
    """The job and the sequence of its last event (0 when it has none)."""
    job: JobRecord | None = None
    last = 0
    async for seq, data in bus.subject_messages(event_subject(project_id, AGG_JOB, job_id)):
        env = decode_envelope(data)
        job = apply_job_event(job, env, decode_event(env))
        last = seq
    return job, last
