"""Charging the jobs' usage events (B1, J8), built by ``bootstrap.build`` on the in-memory
ledger and job subjects (no NATS) with the real pricing registry: an exact charge, once
per usage event whatever the deliveries, the job's side completed after a crash, and an
unpriceable event refused loudly (never charged at zero, never skipped)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from billing_fakes import FakeJobLog, FakeLedgerLog
from fake_event_log import FakeEventLog

from puras_billing.adapters.job_events import JobEvent
from puras_billing.app.usage import UsageBiller
from puras_billing.bootstrap import App, build
from puras_billing.domain.ledger import entry_for
from puras_billing.entrypoints.usage import (
    RefusedUsage,
    event_type,
    handle_job_event,
    retry_delay_s,
)
from puras_billing.settings import BillingSettings
from puras_common.bus.client import Published
from puras_common.events.base import Event, decode_envelope, encode_event
from puras_common.events.ids import job_media_usage_id, job_usage_id
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER, event_subject
from puras_common.events.types import (
    CreditCharged,
    CreditGranted,
    JobCharged,
    JobLogged,
    MediaUsageRecorded,
    ModelUsage,
    UsageRecorded,
)
from puras_common.ids import new_id
from puras_common.telemetry import tracer
from puras_common.views.ledger import BalancesView

SPANS = tracer("test")

SLUG = "claude/sonnet-4-7"
"""Published at 3.60 USD per 1M input tokens and 18.00 USD per 1M output tokens."""
USAGE = ModelUsage(input_tokens=1000, output_tokens=500)
PRICE_AT_20 = 3600 + 9000
"""1000 x 3.6 + 500 x 18 micros: the published rates include the default 20 % margin."""
PRICE_AT_50 = 15750
"""12,600 x 150 / 120."""


@dataclass
class FakeMsg:
    """A usage loop's attempt at one stored job event, and what came of it."""

    data: bytes
    num_delivered: int = 1
    """The attempt's number (1 for the first read of the event)."""
    stream_seq: int = 0
    subject: str = "ev.p.job.j"
    outcome: list[str] = field(default_factory=list)
    """``done`` (nothing left to do) or ``retry`` (held: cannot be priced yet)."""
    delays: list[float | None] = field(default_factory=list)

    @property
    def event(self) -> JobEvent:
        return JobEvent(self.stream_seq, self.data, {})


@dataclass
class World:
    log: FakeEventLog
    app: App
    project: str
    job: str
    refused: RefusedUsage


def _world(margin_pct: int = 20, log: FakeEventLog | None = None) -> World:
    log = log or FakeEventLog()
    app = build(
        BillingSettings(env="dev", margin_pct=margin_pct),
        ledger=FakeLedgerLog(log),
        jobs=FakeJobLog(log),
    )
    return World(log, app, new_id(), new_id(), RefusedUsage())


def _usage_msg(w: World, *, step: int = 1, model: str = SLUG, delivered: int = 1) -> FakeMsg:
    """The runner's usage event, as stored on the job's subject and delivered."""
    ev = UsageRecorded(
        step=step, provider="anthropic", model=model, upstream_model="claude-x", usage=USAGE
    )
    return _stored_msg(w, ev, job_usage_id(w.job, step), delivered)


def _stored_msg(w: World, ev: Event, event_id: str, delivered: int = 1) -> FakeMsg:
    """``ev`` stored on the job's subject, as its delivery carries it."""
    pub = w.log.append(
        ev,
        project_id=w.project,
        aggregate=AGG_JOB,
        aggregate_id=w.job,
        event_id=event_id,
    )
    stored = next(r for r in w.log.on_subject(pub.subject) if r.seq == pub.seq)
    data = encode_event(
        ev,
        event_id=stored.envelope.id,
        project_id=w.project,
        aggregate_id=w.job,
        at=stored.envelope.at,
    )
    return FakeMsg(data, num_delivered=delivered, stream_seq=pub.seq, subject=pub.subject)


def _again(msg: FakeMsg) -> FakeMsg:
    return FakeMsg(
        msg.data,
        num_delivered=msg.num_delivered + 1,
        stream_seq=msg.stream_seq,
        subject=msg.subject,
    )


async def _handle(w: World, msg: FakeMsg, *, usage: UsageBiller | None = None) -> None:
    delay = await handle_job_event(
        usage or w.app.usage,
        msg.event,
        SPANS,
        refused=w.refused,
        retry_max_s=300.0,
        attempt=msg.num_delivered,
    )
    msg.outcome.append("done" if delay is None else "retry")
    if delay is not None:
        msg.delays.append(delay)


def _charges(w: World) -> list[CreditCharged]:
    recs = w.log.on_subject(event_subject(w.project, AGG_LEDGER, w.project))
    return [r.event for r in recs if isinstance(r.event, CreditCharged)]


def _costs(w: World) -> list[JobCharged]:
    recs = w.log.on_subject(event_subject(w.project, AGG_JOB, w.job))
    return [r.event for r in recs if isinstance(r.event, JobCharged)]


async def test_a_usage_event_is_charged_its_exact_price_on_the_ledger_and_the_job() -> None:
    w = _world()
    msg = _usage_msg(w)
    await _handle(w, msg)
    assert msg.outcome == ["done"]
    [charge] = _charges(w)
    call = charge.call
    assert call.billed_micros == PRICE_AT_20
    assert call.usage_id == f"{w.job}:usage:1"
    assert (call.job_id, call.step, call.provider, call.model) == (w.job, 1, "anthropic", SLUG)
    assert (call.input_tokens, call.output_tokens) == (1000, 500)
    assert (call.registry_version, call.margin_pct) == ("2026-12-01", 20)
    assert _costs(w) == [JobCharged(call=call)]
    assert charge.balance_micros == -PRICE_AT_20
    ids = [r.envelope.id for r in w.log.records()]
    # No credit was granted: the charge takes the balance below zero, which is announced.
    assert ids[-3:] == [
        f"charge:{call.usage_id}",
        f"depleted:charge:{call.usage_id}",
        f"cost:{call.usage_id}",
    ]


async def test_the_margin_setting_prices_the_charge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURAS_MARGIN_PCT", "50")
    assert BillingSettings(env="dev").margin_pct == 50
    w = _world(margin_pct=50)
    await _handle(w, _usage_msg(w))
    assert [c.call.billed_micros for c in _charges(w)] == [PRICE_AT_50]
    assert [c.call.margin_pct for c in _charges(w)] == [50]


def test_a_negative_margin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PURAS_BILLING_MARGIN_PCT", "-1")
    with pytest.raises(ValueError, match="margin_pct"):
        BillingSettings(env="dev")


async def test_a_charge_enters_the_balance_and_the_ledger_projection() -> None:
    w = _world()
    w.log.append(
        CreditGranted(grant_id="g", micros=20_000),
        project_id=w.project,
        aggregate=AGG_LEDGER,
        aggregate_id=w.project,
        event_id="grant:g",
    )
    await _handle(w, _usage_msg(w))
    view = BalancesView()
    entries = []
    for rec in w.log.on_subject(event_subject(w.project, AGG_LEDGER, w.project)):
        view.apply(rec)
        entries.append(entry_for(rec.envelope, rec.event))
    assert view.balances[w.project] == 20_000 - PRICE_AT_20
    charge = entries[-1]
    assert charge is not None
    assert (charge.kind, charge.micros) == ("charge", -PRICE_AT_20)
    assert w.job in charge.note
    assert SLUG in charge.note
    assert sum(e.micros for e in entries if e is not None) == 20_000 - PRICE_AT_20


async def test_a_usage_event_delivered_twice_is_charged_once() -> None:
    w = _world()
    msg = _usage_msg(w)
    await _handle(w, msg)
    again = _again(msg)
    await _handle(w, again)
    # And once more after the duplicate window forgot both ids: the log is looked up.
    w.log.expire_ids()
    late = _again(again)
    await _handle(w, late)
    # And delivered for the first time again, by a durable created anew.
    anew = FakeMsg(msg.data, num_delivered=1, stream_seq=msg.stream_seq, subject=msg.subject)
    await _handle(w, anew)
    assert [m.outcome for m in (msg, again, late, anew)] == [["done"]] * 4
    assert len(_charges(w)) == 1
    assert len(_costs(w)) == 1


async def test_concurrent_deliveries_of_one_usage_event_charge_once() -> None:
    w = _world()
    first = _usage_msg(w)
    msgs = [first, *(_again(first) for _ in range(3))]
    await asyncio.gather(*(_handle(w, m) for m in msgs))
    assert all(m.outcome == ["done"] for m in msgs)
    assert len(_charges(w)) == 1
    assert len(_costs(w)) == 1


async def test_the_steps_of_a_job_are_charged_each() -> None:
    w = _world()
    for step in (1, 2, 3):
        await _handle(w, _usage_msg(w, step=step))
    assert [c.call.step for c in _costs(w)] == [1, 2, 3]
    assert sum(c.call.billed_micros for c in _charges(w)) == 3 * PRICE_AT_20


class CrashingJobLog(FakeJobLog):
    """Billing dies after the ledger's charge, before the job's side is stored."""

    def __init__(self, log: FakeEventLog) -> None:
        super().__init__(log)
        self.crashes = 1

    async def append(
        self, event: Event, *, project_id: str, job_id: str, event_id: str
    ) -> Published:
        if self.crashes:
            self.crashes -= 1
            raise ConnectionError("billing died")
        return await super().append(event, project_id=project_id, job_id=job_id, event_id=event_id)


async def test_a_crash_between_the_appends_is_completed_by_the_redelivery() -> None:
    log = FakeEventLog()
    w = _world(log=log)
    crashing = build(
        BillingSettings(env="dev"), ledger=FakeLedgerLog(log), jobs=CrashingJobLog(log)
    )
    msg = _usage_msg(w)
    with pytest.raises(ConnectionError):
        await _handle(w, msg, usage=crashing.usage)
    assert msg.outcome == []  # not done: the loop tries it again
    assert len(_charges(w)) == 1
    assert _costs(w) == []
    # Redelivered beyond the duplicate window, to a billing now at another margin: the
    # charge is found, and the job's side takes the price the ledger holds.
    log.expire_ids()
    other = _world(margin_pct=50, log=log)
    again = _again(msg)
    await _handle(
        World(log, other.app, w.project, w.job, w.refused),
        again,
    )
    assert again.outcome == ["done"]
    [charge] = _charges(w)
    assert _costs(w) == [JobCharged(call=charge.call)]
    assert charge.call.billed_micros == PRICE_AT_20


async def test_an_unknown_slug_is_refused_loudly_and_retried_never_charged() -> None:
    w = _world()
    msg = _usage_msg(w, model="claude/no-such-model")
    with structlog.testing.capture_logs() as logs:
        await _handle(w, msg)
    assert msg.outcome == ["retry"]
    assert msg.delays == [1.0]
    assert _charges(w) == []
    assert _costs(w) == []
    [err] = [e for e in logs if e["log_level"] == "error"]
    assert err["slug"] == "claude/no-such-model"
    assert err["project_id"] == w.project
    assert err["usage_id"] == f"{w.job}:usage:1"
    assert "no price" in err["error"]
    assert "claude/no-such-model" in w.refused.degraded()["usage"]
    # Retried with a growing delay, still never charged.
    again = _again(_again(msg))
    await _handle(w, again)
    assert (again.outcome, again.delays) == (["retry"], [4.0])
    assert _charges(w) == []


async def test_a_refused_slug_is_charged_once_a_billing_knows_it() -> None:
    w = _world()
    held = _usage_msg(w, step=1, model="claude/no-such-model")
    await _handle(w, held)
    assert w.refused.held
    # Another project's usage goes on being charged meanwhile.
    other = _world(log=w.log)
    ok = _usage_msg(other)
    await _handle(other, ok)
    assert ok.outcome == ["done"]
    assert len(_charges(other)) == 1
    # The refusal clears once the event is charged (here: a known slug at that id).
    fixed = _usage_msg(w, step=2)
    fixed_held = _again(fixed)
    w.refused.held[decode_envelope(fixed.data).id] = "x"
    await _handle(w, fixed_held)
    assert decode_envelope(fixed.data).id not in w.refused.held


async def test_other_job_events_are_passed_without_decoding_their_payload() -> None:
    w = _world()
    env = encode_event(
        JobLogged(stream="stdout", lines=["hi"]),
        event_id="x",
        project_id=w.project,
        aggregate_id=w.job,
    )
    # A payload that would not decode as a log event: only the envelope's type is read.
    broken = env.replace(b'"lines":["hi"]', b'"lines":12')
    assert event_type(broken) == JobLogged.type
    msg = FakeMsg(broken)
    await _handle(w, msg)
    assert msg.outcome == ["done"]
    assert _charges(w) == []


async def test_an_undecodable_event_is_skipped_loudly() -> None:
    w = _world()
    msg = FakeMsg(b"{not json")
    assert event_type(msg.data) is None
    with structlog.testing.capture_logs() as logs:
        await _handle(w, msg)
    assert msg.outcome == ["done"]
    assert [e["log_level"] for e in logs] == ["error"]


def test_the_retry_delay_doubles_up_to_its_cap() -> None:
    assert [retry_delay_s(n, 10.0) for n in (1, 2, 3, 4, 5, 100)] == [1, 2, 4, 8, 10, 10]


def _media_msg(w: World, inputs: dict[str, Any], call: int = 1) -> FakeMsg:
    ev = MediaUsageRecorded(
        call=call, provider="fal", model="openai/gpt-image-2", inputs=inputs, skill="draw"
    )
    return _stored_msg(w, ev, job_media_usage_id(w.job, call))


async def test_a_media_call_is_charged_at_the_row_its_inputs_hit() -> None:
    """B2: openai/gpt-image-2 is a quality x size table; low quality at 1024x768 is
    published at 0.006 USD a call, the slug's default row (high, 1024x1024) at 0.253."""
    w = _world()
    await _handle(w, _media_msg(w, {"prompt": "a dot", "quality": "low", "size": "1024x768"}))
    await _handle(w, _media_msg(w, {"prompt": "a dot"}, call=2))
    calls = [c.call for c in _charges(w)]
    assert [(c.kind, c.step, c.billed_micros) for c in calls] == [
        ("media", 1, 6_000),
        ("media", 2, 253_000),
    ]
    assert calls[0].media_inputs == {"prompt": "a dot", "quality": "low", "size": "1024x768"}
    assert calls[0].skill == "draw"
    assert [c.call for c in _costs(w)] == calls


async def test_a_media_call_at_another_margin_is_priced_at_it() -> None:
    w = _world(margin_pct=50)
    await _handle(w, _media_msg(w, {"quality": "low", "size": "1024x768"}))
    # 6,000 published at 20 %: 5,000 upstream, 7,500 at 50 %.
    assert [c.call.billed_micros for c in _charges(w)] == [7_500]


async def test_a_media_call_on_an_unknown_slug_is_refused_not_charged() -> None:
    w = _world()
    ev = MediaUsageRecorded(call=1, provider="fal", model="nobody/image-0", inputs={})
    msg = _stored_msg(w, ev, job_media_usage_id(w.job, 1))
    await _handle(w, msg)
    assert msg.outcome == ["retry"]
    assert _charges(w) == []
    assert "nobody/image-0" in w.refused.degraded()["usage"]
