"""Billing's ledger and job-log ports: one suite each, run against the in-memory fakes the
unit tests use (``tests/billing_fakes.py``) and the NATS adapters on a real nats-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from billing_fakes import FakeJobLog, FakeLedgerLog
from fake_event_log import FakeEventLog

from puras_billing.adapters.job_log import NatsJobLog
from puras_billing.adapters.ledger_log import NatsLedgerLog
from puras_billing.app.ports import JobLog, LedgerLog
from puras_common.bus import Bus, ConcurrencyConflict, connect, ensure_streams
from puras_common.events.types import BilledCall, CreditGranted, JobCharged
from puras_common.ids import new_id

pytestmark = pytest.mark.integration


@pytest.fixture(params=["fake", "nats"])
async def ledger(request: pytest.FixtureRequest) -> AsyncIterator[LedgerLog]:
    if request.param == "fake":
        yield FakeLedgerLog(FakeEventLog())
        return
    server = request.getfixturevalue("nats_server")
    bus: Bus = await connect(server.url, name="ledger-contract")
    await ensure_streams(bus.js)
    try:
        yield NatsLedgerLog(bus)
    finally:
        await bus.close()


def _grant(micros: int = 5) -> CreditGranted:
    return CreditGranted(grant_id=new_id(), micros=micros)


async def test_appends_are_guarded_by_the_projects_last_sequence(ledger: LedgerLog) -> None:
    p = new_id()
    assert await ledger.last_seq(p) == 0
    first = await ledger.append(_grant(), project_id=p, event_id="e1", expected_last_seq=0)
    assert await ledger.last_seq(p) == first.seq
    with pytest.raises(ConcurrencyConflict):
        await ledger.append(_grant(), project_id=p, event_id="e2", expected_last_seq=0)
    assert await ledger.find(p, "e2") is None
    second = await ledger.append(_grant(), project_id=p, event_id="e2", expected_last_seq=first.seq)
    assert second.seq > first.seq
    assert await ledger.last_seq(p) == second.seq


async def test_projects_have_ledgers_of_their_own(ledger: LedgerLog) -> None:
    p, q = new_id(), new_id()
    await ledger.append(_grant(), project_id=p, event_id="e1", expected_last_seq=0)
    # q's ledger is empty whatever p's holds: its expected sequence is 0.
    pub = await ledger.append(_grant(), project_id=q, event_id="e2", expected_last_seq=0)
    assert await ledger.last_seq(q) == pub.seq
    assert await ledger.find(q, "e1") is None


async def test_an_event_id_stored_before_is_a_duplicate(ledger: LedgerLog) -> None:
    p = new_id()
    first = await ledger.append(_grant(), project_id=p, event_id="g1", expected_last_seq=0)
    # The sequence check comes first: a stale retry is refused, a current one deduplicated.
    with pytest.raises(ConcurrencyConflict):
        await ledger.append(_grant(), project_id=p, event_id="g1", expected_last_seq=0)
    again = await ledger.append(_grant(), project_id=p, event_id="g1", expected_last_seq=first.seq)
    assert again.duplicate
    assert again.seq == first.seq
    assert await ledger.last_seq(p) == first.seq


async def test_find_gives_the_sequence_of_an_event_by_id(ledger: LedgerLog) -> None:
    p = new_id()
    seqs = []
    for i in range(3):
        last = await ledger.last_seq(p)
        pub = await ledger.append(_grant(), project_id=p, event_id=f"g{i}", expected_last_seq=last)
        seqs.append(pub.seq)
    assert [await ledger.find(p, f"g{i}") for i in range(3)] == seqs
    assert await ledger.find(p, "g9") is None
    assert await ledger.find(new_id(), "g0") is None


async def test_find_event_gives_the_event_as_stored(ledger: LedgerLog) -> None:
    p = new_id()
    grant = _grant(7)
    pub = await ledger.append(grant, project_id=p, event_id="g", expected_last_seq=0)
    assert await ledger.find_event(p, "g") == (pub.seq, grant)
    assert await ledger.find_event(p, "other") is None
    assert await ledger.find_event(p, "g", after_seq=pub.seq - 1) == (pub.seq, grant)
    assert await ledger.find_event(p, "g", after_seq=pub.seq) is None


@pytest.fixture(params=["fake", "nats"])
async def jobs(request: pytest.FixtureRequest) -> AsyncIterator[JobLog]:
    if request.param == "fake":
        yield FakeJobLog(FakeEventLog())
        return
    server = request.getfixturevalue("nats_server")
    bus: Bus = await connect(server.url, name="job-log-contract")
    await ensure_streams(bus.js)
    try:
        yield NatsJobLog(bus)
    finally:
        await bus.close()


def _cost(usage_id: str) -> JobCharged:
    return JobCharged(
        call=BilledCall(
            usage_id=usage_id,
            job_id="j",
            step=1,
            provider="anthropic",
            model="claude/sonnet-4-7",
            billed_micros=3,
            registry_version="v",
            margin_pct=20,
        )
    )


async def test_job_costs_are_found_by_id_and_stored_once(jobs: JobLog) -> None:
    p, j = new_id(), new_id()
    assert await jobs.find(p, j, "cost:u1") is None
    first = await jobs.append(_cost("u1"), project_id=p, job_id=j, event_id="cost:u1")
    again = await jobs.append(_cost("u1"), project_id=p, job_id=j, event_id="cost:u1")
    assert again.duplicate
    assert again.seq == first.seq
    assert await jobs.find(p, j, "cost:u1") == first.seq
    assert await jobs.find(p, new_id(), "cost:u1") is None
    assert await jobs.find(p, j, "cost:u1", after_seq=first.seq - 1) == first.seq
    assert await jobs.find(p, j, "cost:u1", after_seq=first.seq) is None
