"""A job's current state, folded from its events in the log."""

from __future__ import annotations

from nats.js.errors import NotFoundError

from puras_common.bus import Bus
from puras_common.events.base import decode_envelope, decode_event
from puras_common.events.subjects import AGG_JOB, EVENTS_STREAM, event_subject
from puras_common.events.types import JobRecord
from puras_common.views.jobs import apply_job_event

__all__ = ["read_job"]


async def read_job(bus: Bus, project_id: str, job_id: str) -> tuple[JobRecord | None, int]:
    """The job and the sequence of its last event (0 when it has none)."""
    subject = event_subject(project_id, AGG_JOB, job_id)
    job: JobRecord | None = None
    seq, last = 1, 0
    while True:
        try:
            msg = await bus.js.get_msg(
                EVENTS_STREAM, seq=seq, subject=subject, next=True, direct=True
            )
        except NotFoundError:
            return job, last
        env = decode_envelope(msg.data or b"")
        job = apply_job_event(job, env, decode_event(env))
        last = int(msg.seq or 0)
        seq = last + 1
