"""One job's events as the API shows them, and the job folded from them (pure).

The adapter (:mod:`puras_gateway.adapters.job_log`) reads them from the log; the events
API, the SSE frames, wait and cancel render them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from puras_common.events.base import Envelope
from puras_common.events.types import AnyEvent, JobRecord
from puras_common.views.jobs import apply_job_event, public_event_type, public_payload

__all__ = ["JobEvent", "api_events", "fold"]


@dataclass(frozen=True, slots=True)
class JobEvent:
    idx: int
    envelope: Envelope
    event: AnyEvent | None
    seq: int = 0
    """Stream sequence (0 for an event seen live, which carries none)."""

    @property
    def type(self) -> str:
        return public_event_type(self.envelope.type)

    def payload(self, job: JobRecord | None) -> dict[str, Any]:
        """The event's payload in the API; ``job`` is the job folded up to and including
        it (a terminal event shows it)."""
        raw = None if self.event is not None else msgspec.json.decode(self.envelope.data)
        return public_payload(self.event, raw, job=job)

    def as_api(self, job: JobRecord | None) -> dict[str, Any]:
        return {
            "id": self.idx,
            "type": self.type,
            "payload": self.payload(job),
            "at": self.envelope.at,
        }


def fold(events: list[JobEvent], job: JobRecord | None = None) -> JobRecord | None:
    """``job`` (``None``: nothing yet) with ``events`` applied in order."""
    for e in events:
        job = apply_job_event(job, e.envelope, e.event)
    return job


def api_events(events: list[JobEvent]) -> list[dict[str, Any]]:
    """A job's events as the events API lists them (J5), from its first one."""
    out: list[dict[str, Any]] = []
    job: JobRecord | None = None
    for e in events:
        job = apply_job_event(job, e.envelope, e.event)
        out.append(e.as_api(job))
    return out
