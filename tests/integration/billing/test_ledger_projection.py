"""Billing's ledger projection against real NATS and Postgres: charges are entries with
negative micros, the balance the gateway shows is grants minus charges, a rebuild from
the log agrees, and tables of a build that did not know charges are rebuilt with them."""

from __future__ import annotations

import uuid
from typing import ClassVar

import asyncpg
import msgspec
import pytest
from projector_helpers import Projector

from puras_billing.adapters.ledger_log import NatsLedgerLog
from puras_billing.adapters.projection import LedgerProjection
from puras_common.bus import Bus
from puras_common.events.types import BilledCall, CreditCharged, CreditGranted
from puras_common.projection.base import RecordedEvent
from puras_common.projection.rebuild import rebuild_and_compare
from puras_gateway.adapters.read_models import ReadModels

pytestmark = pytest.mark.integration


def _charge(usage_id: str, job: str, micros: int) -> CreditCharged:
    return CreditCharged(
        call=BilledCall(
            skill="summarize",
            key_prefix="kp1",
            usage_id=usage_id,
            job_id=job,
            step=1,
            provider="anthropic",
            model="claude/sonnet-4-7",
            input_tokens=1000,
            billed_micros=micros,
            registry_version="2026-12-01",
            margin_pct=20,
        )
    )


async def _ledger(bus: Bus, project: str, job: str) -> int:
    """A grant of 10,000 and two charges of 3,600 and 1,250; the last sequence."""
    ledger = NatsLedgerLog(bus)
    seq = 0
    for ev, eid in (
        (CreditGranted(grant_id="g", micros=10_000, note="top-up"), "grant:g"),
        (_charge("u1", job, 3_600), "charge:u1"),
        (_charge("u2", job, 1_250), "charge:u2"),
    ):
        pub = await ledger.append(ev, project_id=project, event_id=eid, expected_last_seq=seq)
        seq = pub.seq
    return seq


async def _entries(dsn: str, project: str) -> list[tuple[str, str, int, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT entry_id, kind, micros, note FROM ledger_entries WHERE project_id = $1 "
            "ORDER BY seq",
            project,
        )
    finally:
        await conn.close()
    return [(r["entry_id"], r["kind"], r["micros"], r["note"]) for r in rows]


async def test_charges_are_entries_and_the_balance_is_grants_minus_charges(
    bus: Bus, database_url: str, reads: ReadModels
) -> None:
    project, job = str(uuid.uuid4()), str(uuid.uuid4())
    last = await _ledger(bus, project, job)
    projector = Projector(database_url, bus, LedgerProjection())
    try:
        await projector.applied(last)
        assert await reads.balance(project) == 10_000 - 3_600 - 1_250
        entries = await _entries(database_url, project)
        assert [(e[0], e[1], e[2]) for e in entries] == [
            ("grant:g", "grant", 10_000),
            ("charge:u1", "charge", -3_600),
            ("charge:u2", "charge", -1_250),
        ]
        assert all(job in note and "claude/sonnet-4-7" in note for *_, note in entries[1:])
        report = await rebuild_and_compare(database_url, bus.js, LedgerProjection())
        assert report.equal, report.render()
    finally:
        await projector.stop()


async def test_each_charge_is_a_usage_row_and_the_jobs_cost_is_their_sum(
    bus: Bus, database_url: str
) -> None:
    project, job = str(uuid.uuid4()), str(uuid.uuid4())
    last = await _ledger(bus, project, job)
    projector = Projector(database_url, bus, LedgerProjection())
    try:
        await projector.applied(last)
        conn = await asyncpg.connect(database_url)
        try:
            rows = await conn.fetch(
                "SELECT usage_id, job_id, skill, key_prefix, model, input_tokens, billed_micros,"
                " registry_version FROM usage_rows WHERE project_id = $1 ORDER BY seq",
                project,
            )
            cost = await conn.fetchrow(
                "SELECT cost_micros, calls FROM job_costs WHERE job_id = $1", job
            )
        finally:
            await conn.close()
        assert [tuple(r) for r in rows] == [
            ("u1", job, "summarize", "kp1", "claude/sonnet-4-7", 1000, 3_600, "2026-12-01"),
            ("u2", job, "summarize", "kp1", "claude/sonnet-4-7", 1000, 1_250, "2026-12-01"),
        ]
        assert cost is not None
        assert tuple(cost) == (3_600 + 1_250, 2)
    finally:
        await projector.stop()


class WithoutCharges(LedgerProjection):
    """The projection as a build that did not know ``ledger.charged`` ran it: version 1,
    the charge decoded as an unknown type (counted as an event, not applied)."""

    version: ClassVar[int] = 1

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        unknown = [
            msgspec.structs.replace(r, event=None) if isinstance(r.event, CreditCharged) else r
            for r in events
        ]
        await super().apply(conn, unknown)


async def test_tables_of_a_build_without_charges_are_rebuilt_with_them(
    bus: Bus, database_url: str, reads: ReadModels
) -> None:
    project, job = str(uuid.uuid4()), str(uuid.uuid4())
    last = await _ledger(bus, project, job)
    old = Projector(database_url, bus, WithoutCharges())
    try:
        await old.applied(last)
    finally:
        await old.stop()
    assert await reads.balance(project) == 10_000  # what the old build left
    new = Projector(database_url, bus, LedgerProjection())
    try:
        await new.applied(last)
        assert await reads.balance(project) == 10_000 - 3_600 - 1_250
    finally:
        await new.stop()


async def test_a_batch_counts_each_entry_once_whatever_it_repeats(database_url: str) -> None:
    """The projection applies a batch set-wise: an entry twice in one batch, or a batch
    applied again (a replay), moves the balance, the usage rows and the job cost once."""
    from puras_common.db import quote_ident
    from puras_common.events.base import decode_envelope, encode_event
    from puras_common.events.subjects import AGG_LEDGER, event_subject
    from puras_common.projection.runner import ensure_projection_schema

    project, job = str(uuid.uuid4()), str(uuid.uuid4())

    def rec(seq: int, ev: CreditGranted | CreditCharged, event_id: str) -> RecordedEvent:
        env = decode_envelope(
            encode_event(ev, event_id=event_id, project_id=project, aggregate_id=project)
        )
        subject = event_subject(project, AGG_LEDGER, project)
        return RecordedEvent(seq=seq, subject=subject, envelope=env, event=ev)

    grant = rec(1, CreditGranted(grant_id="g", micros=10_000), "grant:g")
    c1 = rec(2, _charge("u1", job, 3_600), "charge:u1")
    c2 = rec(3, _charge("u2", job, 1_250), "charge:u2")
    schema = f"batch_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await ensure_projection_schema(conn, LedgerProjection(), schema)
        proj = LedgerProjection()
        async with conn.transaction():
            await proj.apply(conn, [grant, c1, c1, c2])
        async with conn.transaction():
            await proj.apply(conn, [c1, c2, grant])  # a replay of what was applied
        q = quote_ident(schema)
        balance = await conn.fetchval(
            f"SELECT credit_balance_micros FROM {q}.project_balances WHERE project_id = $1",  # noqa: S608
            project,
        )
        rows = await conn.fetchval(f"SELECT count(*) FROM {q}.usage_rows")  # noqa: S608
        cost = await conn.fetchrow(f"SELECT cost_micros, calls FROM {q}.job_costs")  # noqa: S608
        await conn.execute(f"DROP SCHEMA {q} CASCADE")
    finally:
        await conn.close()
    assert balance == 10_000 - 3_600 - 1_250
    assert rows == 2
    assert cost is not None
    assert tuple(cost) == (4_850, 2)
