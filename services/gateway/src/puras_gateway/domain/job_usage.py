"""A job's usage rows (J8): its billed calls, folded from its own ``job.cost`` events (pure).

The rows come from the same events, through the same fold, as the job's ``cost_micros``:
a row is listed exactly when the fold adds its ``billed_micros`` to the job, so the job's
cost is the sum of its rows by construction.
"""

from __future__ import annotations

from typing import Any

from puras_common.events.types import JobCharged, JobRecord
from puras_common.views.jobs import apply_job_event
from puras_gateway.domain.job_events import JobEvent

__all__ = ["usage_rows"]


def usage_rows(events: list[JobEvent]) -> list[dict[str, Any]]:
    """The job's billed calls in the order they were billed (``GET /v1/jobs/{id}/usage``)."""
    out: list[dict[str, Any]] = []
    job: JobRecord | None = None
    for e in events:
        # Counted as the fold counts it: a charge adds to a job that exists, ended or not.
        if isinstance(e.event, JobCharged) and job is not None:
            call = e.event.call
            out.append(
                {
                    "provider": call.provider,
                    "model": call.model,
                    "input_tokens": call.input_tokens,
                    "output_tokens": call.output_tokens,
                    "cache_read_tokens": call.cache_read_tokens,
                    "cache_write_tokens": call.cache_write_tokens,
                    "billed_micros": call.billed_micros,
                    "step": call.step,
                    "registry_version": call.registry_version,
                    "at": e.envelope.at,
                }
            )
        job = apply_job_event(job, e.envelope, e.event)
    return out
