"""The billing audit (SPEC Z3) against a real nats-server and Postgres: usage charged by
billing's own code and folded by the real projectors audits clean; a tampered usage
row, balance or job cost, or a charge the log holds at a wrong price, does not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest
from projector_helpers import Projector

from puras_billing.adapters.job_log import NatsJobLog
from puras_billing.adapters.ledger_log import NatsLedgerLog
from puras_billing.adapters.projection import LedgerProjection
from puras_billing.bootstrap import App, build
from puras_billing.settings import BillingSettings
from puras_common.audit import AuditIncomplete, AuditReport, run_audit
from puras_common.bus import Bus
from puras_common.events.commands import GrantCredit
from puras_common.events.ids import credit_charged_id, job_queued_id, job_usage_id
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER, EVENTS_STREAM, aggregate_filter
from puras_common.events.types import CreditCharged, JobQueued, ModelUsage, UsageRecorded
from puras_common.ids import new_id
from puras_gateway.adapters.projections import JobsProjection

pytestmark = pytest.mark.integration

SLUG = "claude/sonnet-4-6"


@dataclass
class Stack:
    bus: Bus
    app: App
    conn: asyncpg.Connection
    ledger: Projector
    jobs: Projector

    async def settled(self) -> None:
        """Both projections have applied the last event on their subjects."""
        for projector, aggregate in ((self.ledger, AGG_LEDGER), (self.jobs, AGG_JOB)):
            last = await self.bus.js.get_last_msg(EVENTS_STREAM, aggregate_filter(aggregate))
            await projector.applied(int(last.seq or 0))

    async def audit(self, settle_s: float = 10.0) -> AuditReport:
        await self.settled()
        return await run_audit(self.bus.js, self.conn, settle_s=settle_s)


@pytest.fixture
async def stack(bus: Bus, database_url: str) -> AsyncIterator[Stack]:
    app = build(BillingSettings(env="dev"), ledger=NatsLedgerLog(bus), jobs=NatsJobLog(bus))
    ledger = Projector(database_url, bus, LedgerProjection())
    jobs = Projector(database_url, bus, JobsProjection())
    conn = await asyncpg.connect(database_url)
    try:
        yield Stack(bus, app, conn, ledger, jobs)
    finally:
        await conn.close()
        await ledger.stop()
        await jobs.stop()


async def _job(s: Stack, project: str) -> str:
    job = new_id()
    queued = JobQueued(skill="s", inputs={}, deployment_id=None, created_at=datetime.now(UTC))
    await s.bus.append(
        queued, project_id=project, aggregate=AGG_JOB, aggregate_id=job, event_id=job_queued_id(job)
    )
    return job


async def _use(s: Stack, project: str, job: str, step: int, tokens: int) -> None:
    """A usage event as the runner records it, charged by billing's own biller."""
    usage = UsageRecorded(
        step=step,
        provider="anthropic",
        model=SLUG,
        upstream_model="claude-x",
        usage=ModelUsage(input_tokens=tokens, output_tokens=tokens // 2),
        skill="s",
    )
    uid = job_usage_id(job, step)
    pub = await s.bus.append(
        usage, project_id=project, aggregate=AGG_JOB, aggregate_id=job, event_id=uid
    )
    await s.app.usage.bill(usage, usage_id=uid, usage_seq=pub.seq, project_id=project, job_id=job)


async def _load(s: Stack) -> tuple[str, str]:
    """Two projects, grants, three jobs, seven billed calls; one project and one job."""
    p, q = new_id(), new_id()
    for project, micros in ((p, 2_000_000), (q, 50_000), (p, 300_000)):
        cmd = GrantCredit(grant_id=new_id(), project_id=project, micros=micros)
        await s.app.ledger.grant(cmd, redelivered=False)
    jobs = [await _job(s, p), await _job(s, p), await _job(s, q)]
    for i in range(7):
        job = jobs[i % 3]
        await _use(s, q if job == jobs[2] else p, job, i + 1, 1_000 * (i + 1))
    return p, jobs[0]


async def test_a_log_billed_by_billing_audits_clean(stack: Stack) -> None:
    await _load(stack)
    report = await stack.audit()
    assert report.clean, report.render()
    assert {t.table: t.live_rows for t in report.tables} == {
        "ledger_entries": 10,
        "project_balances": 2,
        "usage_rows": 7,
        "job_costs": 3,
        "jobs.cost_micros": 3,
    }
    # grants (3), crossings, jobs queued (3), usage (7), charges (7), job costs (7)
    assert report.events >= 27
    assert report.first_seq == 1
    assert "result: CLEAN" in report.render()


@pytest.mark.parametrize(
    ("table", "sql"),
    [
        ("usage_rows", "UPDATE usage_rows SET billed_micros = billed_micros + 1 WHERE job_id = $1"),
        (
            "project_balances",
            "UPDATE project_balances SET credit_balance_micros = 7 "
            "WHERE project_id = (SELECT project_id FROM jobs WHERE id = $1)",
        ),
        ("jobs.cost_micros", "UPDATE jobs SET cost_micros = cost_micros - 1 WHERE id = $1"),
        ("job_costs", "DELETE FROM job_costs WHERE job_id = $1"),
    ],
)
async def test_a_tampered_projection_row_is_a_difference(
    stack: Stack, table: str, sql: str
) -> None:
    _, job = await _load(stack)
    await stack.settled()
    await stack.conn.execute(sql, job)
    report = await stack.audit()
    assert not report.clean
    diffs = {t.table: (t.only_live, t.only_rebuilt) for t in report.tables if not t.equal}
    assert list(diffs) == [table]
    assert all(
        d.kind == "table_row" and d.detail.startswith(f"{table}: ") for d in report.differences
    )
    assert "DIFFERENCE table_row" in report.render()


async def test_a_charge_at_a_price_its_registry_does_not_give_is_a_difference(
    stack: Stack,
) -> None:
    p, job = await _load(stack)
    # A charge appended by something other than billing's biller: 1 micro too much.
    usage = UsageRecorded(
        step=99,
        provider="anthropic",
        model=SLUG,
        upstream_model="x",
        usage=ModelUsage(input_tokens=10),
    )
    uid = job_usage_id(job, 99)
    await stack.bus.append(usage, project_id=p, aggregate=AGG_JOB, aggregate_id=job, event_id=uid)
    call = stack.app.usage.price(usage, usage_id=uid, job_id=job)
    wrong = CreditCharged(call=msgspec.structs.replace(call, billed_micros=call.billed_micros + 1))
    await stack.bus.append(
        wrong, project_id=p, aggregate=AGG_LEDGER, aggregate_id=p, event_id=credit_charged_id(uid)
    )
    report = await stack.audit(settle_s=1.0)
    kinds = [d.kind for d in report.differences]
    assert "price_mismatch" in kinds
    # billing's biller did not run for it: its job.cost is missing too, and reported.
    assert "missing_job_cost" in kinds


async def test_a_projection_that_does_not_reach_the_log_makes_the_audit_incomplete(
    stack: Stack,
) -> None:
    await _load(stack)
    await stack.settled()
    await stack.jobs.stop()
    await _job(stack, new_id())
    with pytest.raises(AuditIncomplete, match="jobs view"):
        await run_audit(stack.bus.js, stack.conn, settle_s=0.5)
