"""The job subjects of the event log, over JetStream."""

from __future__ import annotations

from puras_common.bus import Bus, Published
from puras_common.events.base import Event
from puras_common.events.subjects import AGG_JOB, event_subject
from puras_common.events.types import JobRecord
from puras_scheduler.adapters.job_state import read_job

__all__ = ["NatsJobLog"]


class NatsJobLog:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def append(
        self,
        event: Event,
        *,
        project_id: str,
        job_id: str,
        event_id: str,
        expected_last_seq: int | None = None,
    ) -> Published:
        return await self._bus.append(
            event,
            project_id=project_id,
            aggregate=AGG_JOB,
            aggregate_id=job_id,
            event_id=event_id,
            # Every event of a job belongs to the job's own flow.
            correlation_id=job_id,
            expected_last_subject_seq=expected_last_seq,
        )

    async def last_seq(self, project_id: str, job_id: str) -> int:
        return await self._bus.last_subject_seq(event_subject(project_id, AGG_JOB, job_id))

    async def read(self, project_id: str, job_id: str) -> tuple[JobRecord | None, int]:
        return await read_job(self._bus, project_id, job_id)
