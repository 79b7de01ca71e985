"""A projector meeting events it cannot decode or apply, against real NATS and Postgres.

Attacks published straight into PURAS_EVENTS: the projector quarantines the bad event in
the transaction that moves its checkpoint past it, applies its neighbours, and never
quarantines a failure that is not the event's (those redeliver). Retry re-applies an
entry through the current code; rebuild reproduces the quarantine.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import asyncpg
import msgspec
import pytest

from puras_common.bus.follow import RawEvent
from puras_common.events.base import encode_event
from puras_common.events.subjects import EVENTS_STREAM, event_subject
from puras_common.events.types import JobQueued
from puras_common.projection import ProjectorRunner
from puras_common.projection.base import Projection, RecordedEvent
from puras_common.projection.quarantine import list_entries, open_counts, poison_reason
from puras_common.projection.rebuild import rebuild_and_compare
from puras_common.projection.runner import retry_quarantined
from puras_gateway.adapters.projections import JobsProjection

pytestmark = pytest.mark.integration


def _queued(project: str, job: str, inputs: Any) -> bytes:
    ev = JobQueued(
        skill="echo",
        inputs={"x": 1},
        deployment_id="d1",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    data = msgspec.json.decode(
        encode_event(ev, event_id=f"{job}:queued", project_id=project, aggregate_id=job)
    )
    data["data"]["inputs"] = inputs
    return msgspec.json.encode(data)


async def _publish(bus: Any, subject: str, data: bytes) -> int:
    ack = await bus.js.publish(subject, data, stream=EVENTS_STREAM)
    return int(ack.seq)


async def _until_applied(runner: ProjectorRunner, seq: int) -> None:
    assert await runner.wait_for(seq, 30), f"{runner.projection.name} stuck at {runner.last_seq}"


async def test_bad_events_are_quarantined_and_their_neighbours_applied(
    bus: Any, database_url: str
) -> None:
    p, other = uuid.uuid4().hex, uuid.uuid4().hex
    good1, nul, junk, wrong, unknown, good2 = (uuid.uuid4().hex for _ in range(6))
    # Published before the projector starts: one batch holds them all.
    await _publish(bus, event_subject(other, "job", good1), _queued(other, good1, {}))
    s_nul = await _publish(bus, event_subject(p, "job", nul), _queued(p, nul, {"t": "a\u0000b"}))
    s_junk = await _publish(bus, event_subject(p, "job", junk), b"\xff\x00 not json {")
    s_wrong = await _publish(bus, event_subject(p, "job", wrong), _queued(p, wrong, "notadict"))
    unknown_env = {
        "id": f"{unknown}:x", "type": "job.teleported", "v": 1, "at": "2026-01-01T00:00:00Z",
        "project_id": p, "aggregate_id": unknown, "data": {"to": "mars"},
    }  # fmt: skip
    await _publish(bus, event_subject(p, "job", unknown), msgspec.json.encode(unknown_env))
    s_good2 = await _publish(bus, event_subject(other, "job", good2), _queued(other, good2, {}))

    runner = ProjectorRunner(database_url, bus.js, JobsProjection())
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await _until_applied(runner, s_good2)
        conn = await asyncpg.connect(database_url)
        try:
            ids = {r["id"] for r in await conn.fetch("SELECT id FROM jobs")}
            assert ids == {good1, good2}  # the other tenant's jobs, before and after
            entries = await list_entries(conn)
            assert [(e.projection, e.stream_seq) for e in entries] == [
                ("jobs", s_nul),
                ("jobs", s_junk),
                ("jobs", s_wrong),
            ]  # the unknown type is skipped by design, not quarantined
            by_seq = {e.stream_seq: e for e in entries}
            assert "UntranslatableCharacter" in by_seq[s_nul].reason
            assert by_seq[s_junk].event_type is None
            assert "\\xff" in by_seq[s_junk].raw_excerpt
            assert by_seq[s_wrong].event_type == "job.queued"
            assert "inputs" in by_seq[s_wrong].reason
            checkpoint = await conn.fetchval(
                "SELECT last_seq FROM projection_checkpoints WHERE name = 'jobs'"
            )
            assert checkpoint == s_good2
        finally:
            await conn.close()
        assert runner.quarantined == 3
        assert not task.done()

        # A replayed log (the projection rebuilt from sequence 1) quarantines the same.
        report = await rebuild_and_compare(database_url, bus.js, JobsProjection())
        assert report.equal, report.render()
        assert any(
            t.table == "projection_quarantine" and t.rebuilt_rows == 3 for t in report.tables
        )
    finally:
        stop.set()
        await task


class _Flaky(Projection):
    """Refuses events with ``bad`` in their payload while ``refuse`` is set, and fails like
    a lost connection on ``down``."""

    name: ClassVar[str] = "flaky"
    version: ClassVar[int] = 1
    filter_subjects: ClassVar[list[str]] = ["ev.*.job.*"]
    tables: ClassVar[list[str]] = ["flaky_rows"]
    ddl: ClassVar[str] = "CREATE TABLE IF NOT EXISTS flaky_rows (seq bigint PRIMARY KEY)"
    refuse = True
    down = False

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        for rec in events:
            if self.down:
                raise ConnectionResetError("connection lost")
            if self.refuse and b"bad" in bytes(rec.envelope.data):
                raise ValueError("bad value")
            await conn.execute("INSERT INTO flaky_rows VALUES ($1) ON CONFLICT DO NOTHING", rec.seq)


async def test_transient_failures_redeliver_and_retry_applies_after_a_fix(
    bus: Any, database_url: str
) -> None:
    p = uuid.uuid4().hex
    proj = _Flaky()
    runner = ProjectorRunner(database_url, bus.js, proj)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    j1, j2 = uuid.uuid4().hex, uuid.uuid4().hex
    s_bad = await _publish(bus, event_subject(p, "job", j1), _queued(p, j1, {"v": "bad"}))
    s_ok = await _publish(bus, event_subject(p, "job", j2), _queued(p, j2, {"v": "ok"}))
    await _until_applied(runner, s_ok)
    conn = await asyncpg.connect(database_url)
    try:
        assert await open_counts(conn) == {"flaky": 1}
        assert [r["seq"] for r in await conn.fetch("SELECT seq FROM flaky_rows")] == [s_ok]

        # Not the event's fault: nothing is quarantined, the checkpoint stays, run() ends
        # with the error so that its caller starts it again.
        proj.down = True
        j3 = uuid.uuid4().hex
        s_down = await _publish(bus, event_subject(p, "job", j3), _queued(p, j3, {}))
        with pytest.raises(ConnectionResetError):
            await asyncio.wait_for(task, 30)
        assert await open_counts(conn) == {"flaky": 1}
        assert runner.last_seq == s_ok
        proj.down = False
        task = asyncio.create_task(runner.run(stop))
        await _until_applied(runner, s_down)  # redelivered from the checkpoint

        # Still refused: the entry stays, with its reason.
        out = await retry_quarantined(database_url, bus.js, proj, s_bad)
        assert not out.applied
        assert "bad value" in (out.reason or "")
        # "An upgrade fixed it": retry applies it and it leaves the quarantine.
        proj.refuse = False
        out = await retry_quarantined(database_url, bus.js, proj, s_bad)
        assert out.applied
        assert await open_counts(conn) == {}
        rows = sorted(r["seq"] for r in await conn.fetch("SELECT seq FROM flaky_rows"))
        assert rows == [s_bad, s_ok, s_down]
        # The live runner hears of it (NOTIFY) and counts again.
        j4 = uuid.uuid4().hex
        s_last = await _publish(bus, event_subject(p, "job", j4), _queued(p, j4, {}))
        await _until_applied(runner, s_last)
        assert runner.quarantined == 0
    finally:
        await conn.close()
        stop.set()
        await task


def test_what_counts_as_poison() -> None:
    assert poison_reason(asyncpg.UntranslatableCharacterError("unsupported Unicode escape"))
    assert poison_reason(asyncpg.CharacterNotInRepertoireError("invalid byte sequence"))
    assert poison_reason(asyncpg.StringDataRightTruncationError("value too long"))
    assert poison_reason(asyncpg.UniqueViolationError("duplicate key"))
    assert poison_reason(ValueError("bad"))
    assert poison_reason(msgspec.ValidationError("Expected `object`"))
    # Transient or infrastructure: redeliver, never quarantine.
    assert poison_reason(asyncpg.ConnectionDoesNotExistError("closed")) is None
    assert poison_reason(asyncpg.CannotConnectNowError("starting up")) is None
    assert poison_reason(asyncpg.SerializationError("could not serialize")) is None
    assert poison_reason(asyncpg.UndefinedTableError("no table")) is None
    assert poison_reason(asyncpg.InterfaceError("connection is closed")) is None
    assert poison_reason(ConnectionResetError()) is None
    assert poison_reason(TimeoutError()) is None
    assert poison_reason(RuntimeError("checkpoint moved")) is None


def test_raw_event_excerpt_is_storable() -> None:
    from puras_common.projection.quarantine import excerpt, sanitize

    assert "\x00" not in excerpt(b"a\x00b\xff")
    assert "\x00" not in sanitize("a\u0000b", 10)
    assert len(sanitize("x" * 50, 10)) == 10
    assert RawEvent(seq=1, subject="s", data=b"", pending=0).seq == 1
