"""The jobs projection keeps a job's cost (J8) against real NATS and Postgres: a charge
billed after the job ended still adds to its row, a rebuild from the log gives the same
tables, and rows of a build that did not know charges are rebuilt."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import asyncpg
import msgspec
import pytest
from projector_helpers import Projector

from puras_common.events.base import Event, encode_event
from puras_common.events.subjects import AGG_JOB, EVENTS_STREAM, event_subject
from puras_common.events.types import (
    BilledCall,
    JobCharged,
    JobQueued,
    JobStarted,
    JobSucceeded,
)
from puras_common.projection.base import RecordedEvent
from puras_common.projection.rebuild import rebuild_and_compare
from puras_gateway.adapters.projections import JobsProjection
from puras_gateway.adapters.read_models import ReadModels
from puras_gateway.domain.requests import ListParams

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Log:
    """One job's subject in PURAS_EVENTS."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self.project = str(uuid.uuid4())
        self.job = str(uuid.uuid4())

    async def append(self, ev: Event, event_id: str, at: datetime) -> int:
        data = encode_event(
            ev, event_id=event_id, project_id=self.project, aggregate_id=self.job, at=at
        )
        subject = event_subject(self.project, AGG_JOB, self.job)
        ack = await self.bus.js.publish(subject, data, stream=EVENTS_STREAM)
        return int(ack.seq)

    async def charge(self, usage_id: str, step: int, billed: int, at: datetime) -> int:
        call = BilledCall(
            usage_id=usage_id,
            job_id=self.job,
            step=step,
            provider="anthropic",
            model="claude/sonnet-4-6",
            input_tokens=1000,
            output_tokens=10,
            billed_micros=billed,
            registry_version="2026-12-01",
            margin_pct=20,
        )
        return await self.append(JobCharged(call=call), f"cost:{usage_id}", at)

    async def run_to_the_end(self) -> int:
        """A job billed once, then ended; the seq of its terminal event."""
        at1, at2 = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
        queued = JobQueued(skill="agent", inputs={}, deployment_id="d1", created_at=T0)
        await self.append(queued, f"{self.job}:queued", T0)
        started = JobStarted(attempt=1, deployment_id="d1", runner_id="r", started_at=at1)
        await self.append(started, f"{self.job}:started:1", at1)
        await self.charge("u1", 1, 7_250, at1)
        done = JobSucceeded(result={"ok": True}, attempt=1, started_at=at1, finished_at=at2)
        return await self.append(done, f"{self.job}:terminal", at2)


async def _events(dsn: str, job_id: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT idx, type, payload::text AS payload FROM job_events "
            "WHERE job_id = $1 ORDER BY idx",
            job_id,
        )
    finally:
        await conn.close()
    return [{"idx": r["idx"], "type": r["type"], **msgspec.json.decode(r["payload"])} for r in rows]


async def test_a_charge_after_the_end_updates_the_row_and_a_rebuild_agrees(
    bus: Any, database_url: str, reads: ReadModels
) -> None:
    log = Log(bus)
    end = await log.run_to_the_end()
    projector = Projector(database_url, bus, JobsProjection())
    try:
        await projector.applied(end)
        found = await reads.get_job_at(log.project, log.job)
        assert found is not None
        assert (found[0].status, found[0].cost_micros, found[1]) == ("succeeded", 7_250, end)

        late = await log.charge("u2", 2, 1_999, T0 + timedelta(seconds=3))
        await projector.applied(late)
        found = await reads.get_job_at(log.project, log.job)
        assert found is not None
        job, last_seq, count = found
        assert (job.status, job.cost_micros, last_seq, count) == ("succeeded", 9_249, late, 5)
        assert job.result == {"ok": True}  # the end stays as it was
        listed, _ = await reads.list_jobs(
            log.project, ListParams(status=None, limit=25, cursor=None)
        )
        assert [(j.id, j.cost_micros) for j in listed] == [(log.job, 9_249)]
        events = await _events(database_url, log.job)
        assert [e["type"] for e in events] == ["queued", "started", "cost", "succeeded", "cost"]
        assert events[-1]["spent_micros"] == 9_249
        assert events[3]["cost_micros"] == 7_250  # the JobOut as it ended

        report = await rebuild_and_compare(database_url, bus.js, JobsProjection())
        assert report.equal, report.render()
    finally:
        await projector.stop()


class WithoutCharges(JobsProjection):
    """The projection as a build that did not know ``job.cost`` ran it: version 2, the
    charge decoded as an unknown type (counted as an event, not applied)."""

    version: ClassVar[int] = 2

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        unknown = [
            msgspec.structs.replace(r, event=None) if isinstance(r.event, JobCharged) else r
            for r in events
        ]
        await super().apply(conn, unknown)


async def test_rows_of_a_build_without_charges_are_rebuilt_with_them(
    bus: Any, database_url: str, reads: ReadModels
) -> None:
    log = Log(bus)
    await log.run_to_the_end()
    late = await log.charge("u2", 2, 1_999, T0 + timedelta(seconds=3))
    old = Projector(database_url, bus, WithoutCharges())
    try:
        await old.applied(late)
    finally:
        await old.stop()
    found = await reads.get_job_at(log.project, log.job)
    assert found is not None
    assert found[0].cost_micros == 0  # what the old build left

    new = Projector(database_url, bus, JobsProjection())
    try:
        await new.applied(late)
        found = await reads.get_job_at(log.project, log.job)
        assert found is not None
        assert (found[0].status, found[0].cost_micros, found[1], found[2]) == (
            "succeeded",
            9_249,
            late,
            5,
        )
    finally:
        await new.stop()
