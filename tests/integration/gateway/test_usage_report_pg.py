"""``GET /v1/usage``'s query (SPEC Z2) over billing's usage rows in real Postgres, the rows
projected by the ledger projection from ledger events on a real nats-server: charges
made by billing's own biller for usage events on job subjects, and charges stored at
chosen instants around UTC midnight, to hold the day keys and the range's edges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from projector_helpers import Projector

from puras_billing.adapters.job_log import NatsJobLog
from puras_billing.adapters.ledger_log import NatsLedgerLog
from puras_billing.adapters.projection import LedgerProjection
from puras_billing.bootstrap import build
from puras_billing.settings import BillingSettings
from puras_common.bus import Bus
from puras_common.events.base import encode_event
from puras_common.events.ids import credit_charged_id, job_usage_id
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER, EVENTS_STREAM, event_subject
from puras_common.events.types import BilledCall, CreditCharged, ModelUsage, UsageRecorded
from puras_gateway.adapters.read_models import ReadModels
from puras_gateway.domain.usage_query import GroupBy, UsageQuery

pytestmark = pytest.mark.integration

SONNET, HAIKU = "claude/sonnet-4-7", "claude/haiku-4-5"
SONNET_PRICE = 12_672
"""1000 input tokens at 3.60 USD/1M, 500 output tokens at 18.00 USD/1M and 200 cache-read
tokens at 0.36 USD/1M (the published rates, margin 20 included)."""
D1 = datetime(2026, 11, 10, tzinfo=UTC)
D2 = D1 + timedelta(days=1)


async def _bill(bus: Bus, project: str, job: str, step: int, skill: str, slug: str) -> None:
    """A usage event on the job's subject, charged by billing's biller (stored now)."""
    billing = build(BillingSettings(env="dev"), ledger=NatsLedgerLog(bus), jobs=NatsJobLog(bus))
    usage = UsageRecorded(
        step=step,
        provider="anthropic",
        model=slug,
        upstream_model="claude-x",
        usage=ModelUsage(input_tokens=1000, output_tokens=500, cache_read_tokens=200),
        skill=skill,
        key_prefix="kp1",
    )
    usage_id = job_usage_id(job, step)
    pub = await bus.append(
        usage, project_id=project, aggregate=AGG_JOB, aggregate_id=job, event_id=usage_id
    )
    await billing.usage.bill(
        usage, usage_id=usage_id, usage_seq=pub.seq, project_id=project, job_id=job
    )


async def _charge_at(bus: Bus, project: str, at: datetime, usage_id: str, micros: int) -> int:
    """A charge stored on the project's ledger as billed at ``at``; its sequence."""
    call = BilledCall(
        usage_id=usage_id,
        job_id="j-old",
        step=1,
        provider="openai",
        model="gpt/5-mini",
        input_tokens=10,
        output_tokens=20,
        cache_write_tokens=5,
        billed_micros=micros,
        registry_version="2026-12-01",
        margin_pct=20,
        skill="report",
    )
    subject = event_subject(project, AGG_LEDGER, project)
    event_id = credit_charged_id(usage_id)
    data = encode_event(
        CreditCharged(call=call, balance_micros=-micros),
        event_id=event_id,
        project_id=project,
        aggregate_id=project,
        at=at,
    )
    pub = await bus.publish_raw(
        subject,
        data,
        msg_id=event_id,
        expected_last_subject_seq=await bus.last_subject_seq(subject),
        stream=EVENTS_STREAM,
    )
    return pub.seq


def _q(start: datetime, end: datetime, group_by: GroupBy) -> UsageQuery:
    return UsageQuery(start=start, end=end, group_by=group_by)


async def test_usage_is_summed_per_day_skill_and_model_within_the_range(
    bus: Bus, database_url: str, reads: ReadModels
) -> None:
    project, other = str(uuid.uuid4()), str(uuid.uuid4())
    # Stored at chosen instants: the last microsecond of D1 and the first of D2 are two
    # days; one before D1 and one at the range's end are outside it.
    await _charge_at(bus, project, D1 - timedelta(microseconds=1), "before", 1)
    await _charge_at(bus, project, D1, "d1-first", 100)
    await _charge_at(bus, project, D2 - timedelta(microseconds=1), "d1-last", 200)
    await _charge_at(bus, project, D2 + timedelta(hours=5), "d2", 400)
    await _charge_at(bus, other, D1 + timedelta(hours=1), "other-project", 1600)
    last = await _charge_at(bus, project, D2 + timedelta(days=1), "at-end", 800)
    projector = Projector(database_url, bus, LedgerProjection())
    try:
        await projector.applied(last)
        end = D2 + timedelta(days=1)
        days = await reads.usage(project, _q(D1, end, "day"))
        assert days == [
            {
                "key": "2026-11-10",
                "billed_micros": 300,
                "calls": 2,
                "input_tokens": 20,
                "output_tokens": 40,
                "cache_read_tokens": 0,
                "cache_write_tokens": 10,
            },
            {
                "key": "2026-11-11",
                "billed_micros": 400,
                "calls": 1,
                "input_tokens": 10,
                "output_tokens": 20,
                "cache_read_tokens": 0,
                "cache_write_tokens": 5,
            },
        ]
        assert all(type(v) is int for row in days for k, v in row.items() if k != "key")
        # The end is excluded, the start included: one microsecond on either side moves
        # a charge in or out.
        wider = await reads.usage(project, _q(D1 - timedelta(microseconds=1), end, "skill"))
        assert [(r["key"], r["billed_micros"], r["calls"]) for r in wider] == [("report", 701, 4)]
        assert await reads.usage(
            project, _q(D2 + timedelta(days=1), D2 + timedelta(days=2), "day")
        ) == [
            {
                "key": "2026-11-12",
                "billed_micros": 800,
                "calls": 1,
                "input_tokens": 10,
                "output_tokens": 20,
                "cache_read_tokens": 0,
                "cache_write_tokens": 5,
            }
        ]
        # Nothing of another project, and nothing at all for a project with no usage.
        other_rows = await reads.usage(other, _q(D1, end, "model"))
        assert [(r["key"], r["billed_micros"]) for r in other_rows] == [("gpt/5-mini", 1600)]
        assert await reads.usage(str(uuid.uuid4()), _q(D1, end, "day")) == []
    finally:
        await projector.stop()


async def test_charges_made_by_billing_are_reported_by_skill_and_model(
    bus: Bus, database_url: str, reads: ReadModels
) -> None:
    project, job_a, job_b = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    before = datetime.now(UTC)
    await _bill(bus, project, job_a, 1, "summarize", SONNET)
    await _bill(bus, project, job_a, 2, "summarize", SONNET)
    await _bill(bus, project, job_b, 1, "translate", HAIKU)
    last = await bus.last_subject_seq(event_subject(project, AGG_LEDGER, project))
    projector = Projector(database_url, bus, LedgerProjection())
    try:
        await projector.applied(last)
        after = datetime.now(UTC) + timedelta(seconds=1)
        by_model = await reads.usage(project, _q(before, after, "model"))
        assert [r["key"] for r in by_model] == [HAIKU, SONNET]  # ordered by key
        sonnet = by_model[1]
        assert (sonnet["calls"], sonnet["billed_micros"]) == (2, 2 * SONNET_PRICE)
        assert (sonnet["input_tokens"], sonnet["output_tokens"]) == (2000, 1000)
        assert sonnet["cache_read_tokens"] == 400
        by_skill = await reads.usage(project, _q(before, after, "skill"))
        assert [(r["key"], r["calls"]) for r in by_skill] == [("summarize", 2), ("translate", 1)]
        # However grouped, the sums are the project's charges: each call counted once.
        by_day = await reads.usage(project, _q(before, after, "day"))
        total = sum(r["billed_micros"] for r in by_model)
        assert sum(r["billed_micros"] for r in by_skill) == total
        assert sum(r["billed_micros"] for r in by_day) == total
        assert sum(r["calls"] for r in by_day) == 3
    finally:
        await projector.stop()
