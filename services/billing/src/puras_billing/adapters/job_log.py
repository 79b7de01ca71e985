"""The job subjects of the event log, over JetStream (billing writes ``job.cost`` there)."""

from __future__ import annotations

from puras_common.bus import Bus, Published
from puras_common.events.base import Event, decode_envelope
from puras_common.events.subjects import AGG_JOB, event_subject

__all__ = ["NatsJobLog"]


class NatsJobLog:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def append(
        self, event: Event, *, project_id: str, job_id: str, event_id: str
    ) -> Published:
        return await self._bus.append(
            event,
            project_id=project_id,
            aggregate=AGG_JOB,
            aggregate_id=job_id,
            event_id=event_id,
            correlation_id=job_id,
        )

    async def find(
        self, project_id: str, job_id: str, event_id: str, *, after_seq: int = 0
    ) -> int | None:
        subject = event_subject(project_id, AGG_JOB, job_id)
        async for seq, data in self._bus.subject_messages(subject, after_seq=after_seq):
            if decode_envelope(data).id == event_id:
                return seq
        return None
