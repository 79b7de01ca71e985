"""In-memory implementations of billing's ports (``puras_billing.app.ports``), held to the
NATS adapters' behaviour by ``tests/integration/billing/test_ledger_port.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fake_event_log import FakeEventLog

from puras_common.bus.client import Published
from puras_common.events.base import Event
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER, event_subject

__all__ = ["FakeJobLog", "FakeLedgerLog"]


class FakeLedgerLog:
    def __init__(self, log: FakeEventLog) -> None:
        self.log = log

    async def last_seq(self, project_id: str) -> int:
        return self.log.last_seq(event_subject(project_id, AGG_LEDGER, project_id))

    async def append(
        self, event: Event, *, project_id: str, event_id: str, expected_last_seq: int
    ) -> Published:
        return self.log.append(
            event,
            project_id=project_id,
            aggregate=AGG_LEDGER,
            aggregate_id=project_id,
            event_id=event_id,
            expected_last_seq=expected_last_seq,
        )

    async def events(
        self, project_id: str, *, after_seq: int = 0
    ) -> AsyncIterator[tuple[int, str, Event | None]]:
        for rec in self.log.on_subject(event_subject(project_id, AGG_LEDGER, project_id)):
            if rec.seq > after_seq:
                yield rec.seq, rec.envelope.id, rec.event

    async def find(self, project_id: str, event_id: str) -> int | None:
        found = await self.find_event(project_id, event_id)
        return None if found is None else found[0]

    async def find_event(
        self, project_id: str, event_id: str, *, after_seq: int = 0
    ) -> tuple[int, Event | None] | None:
        for rec in self.log.on_subject(event_subject(project_id, AGG_LEDGER, project_id)):
            if rec.seq > after_seq and rec.envelope.id == event_id:
                return rec.seq, rec.event
        return None


class FakeJobLog:
    def __init__(self, log: FakeEventLog) -> None:
        self.log = log

    async def append(
        self, event: Event, *, project_id: str, job_id: str, event_id: str
    ) -> Published:
        return self.log.append(
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
        for rec in self.log.on_subject(event_subject(project_id, AGG_JOB, job_id)):
            if rec.seq > after_seq and rec.envelope.id == event_id:
                return rec.seq
        return None
