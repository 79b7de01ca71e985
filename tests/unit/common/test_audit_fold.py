"""The audit's pure fold (SPEC Z3): usage priced again with the registry its charge names,
double and missing charges, job costs against the ledger, the tables it expects."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from puras_common.audit.decode import feed
from puras_common.audit.fold import AuditFold
from puras_common.events.base import Event, encode_event
from puras_common.events.ids import credit_charged_id, job_charged_id, job_queued_id
from puras_common.events.types import (
    BilledCall,
    CreditCharged,
    CreditGranted,
    JobCharged,
    JobQueued,
    MediaUsageRecorded,
    ModelUsage,
    UsageRecorded,
)
from puras_common.pricing import CURRENT, load_registry

P = "proj1"
SLUG = "claude/sonnet-4-6"
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TOKENS = ModelUsage(input_tokens=1_000, output_tokens=500)


class Log:
    """Messages as stored: subject and bytes, numbered from 1, fed to a fold."""

    def __init__(self) -> None:
        self.fold = AuditFold(load_registry)
        self.seq = 0
        self.balance = 0

    def put(self, aggregate: str, aggregate_id: str, ev: Event, event_id: str) -> int:
        self.seq += 1
        data = encode_event(ev, event_id=event_id, project_id=P, aggregate_id=aggregate_id, at=AT)
        feed(self.fold, self.seq, f"ev.{P}.{aggregate}.{aggregate_id}", data)
        return self.seq

    def job(self, job_id: str) -> None:
        ev = JobQueued(skill="s", inputs={}, deployment_id=None, created_at=AT)
        self.put("job", job_id, ev, job_queued_id(job_id))

    def usage(self, job_id: str, step: int = 1, tokens: ModelUsage = TOKENS) -> str:
        uid = f"{job_id}:usage:{step}"
        ev = UsageRecorded(
            step=step, provider="anthropic", model=SLUG, upstream_model="x", usage=tokens
        )
        self.put("job", job_id, ev, uid)
        return uid

    def call(self, uid: str, job_id: str, **changes: object) -> BilledCall:
        fields: dict[str, object] = {
            "usage_id": uid,
            "job_id": job_id,
            "step": 1,
            "provider": "anthropic",
            "model": SLUG,
            "input_tokens": TOKENS.input_tokens,
            "output_tokens": TOKENS.output_tokens,
            "billed_micros": load_registry().model_cost(SLUG, TOKENS, margin_pct=20),
            "registry_version": CURRENT,
            "margin_pct": 20,
        }
        fields.update(changes)
        return msgspec.convert(fields, BilledCall)

    def grant(self, micros: int) -> None:
        self.balance += micros
        ev = CreditGranted(grant_id=f"g{self.seq}", micros=micros, balance_micros=self.balance)
        self.put("ledger", P, ev, f"grant:{self.seq}")

    def charge(self, call: BilledCall, event_id: str | None = None) -> None:
        self.balance -= call.billed_micros
        ev = CreditCharged(call=call, balance_micros=self.balance)
        self.put("ledger", P, ev, event_id or credit_charged_id(call.usage_id))

    def cost(self, call: BilledCall) -> None:
        self.put("job", call.job_id, JobCharged(call=call), job_charged_id(call.usage_id))

    def billed(self, job_id: str, step: int = 1) -> BilledCall:
        """A usage event charged and costed as billing does it."""
        uid = self.usage(job_id, step)
        call = self.call(uid, job_id, step=step)
        self.charge(call)
        self.cost(call)
        return call

    def kinds(self) -> list[str]:
        return [d.kind for d in self.fold.differences()]


def test_a_log_billed_as_billing_bills_it_is_clean_and_gives_the_tables() -> None:
    log = Log()
    log.grant(1_000_000)
    log.job("j1")
    a = log.billed("j1", 1)
    b = log.billed("j1", 2)
    assert log.kinds() == []
    tables = log.fold.expected()
    charges = [f"charge:{a.usage_id}", f"charge:{b.usage_id}"]
    assert [r[0] for r in tables.ledger_entries] == ["grant:0", *charges]
    assert tables.project_balances == [(P, 1_000_000 - a.billed_micros - b.billed_micros, 7)]
    assert [r[0] for r in tables.usage_rows] == [a.usage_id, b.usage_id]
    assert tables.job_costs == [("j1", P, a.billed_micros + b.billed_micros, 2)]
    assert tables.job_cost_micros == [("j1", P, a.billed_micros + b.billed_micros)]
    assert log.fold.last_entry_seq == 7
    assert log.fold.last_job_row_seq == 8


def test_a_charge_priced_otherwise_than_its_registry_prices_it_is_a_difference() -> None:
    log = Log()
    log.job("j1")
    uid = log.usage("j1")
    right = load_registry().model_cost(SLUG, TOKENS, margin_pct=20)
    call = log.call(uid, "j1", billed_micros=right + 1)
    log.charge(call)
    log.cost(call)
    [diff] = log.fold.differences()
    assert diff.kind == "price_mismatch"
    assert f"billed {right + 1} micros" in diff.detail
    assert f"prices it at {right}" in diff.detail


def test_a_charge_is_priced_again_at_the_margin_it_names() -> None:
    log = Log()
    log.job("j1")
    uid = log.usage("j1")
    at_35 = load_registry().model_cost(SLUG, TOKENS, margin_pct=35)
    call = log.call(uid, "j1", billed_micros=at_35, margin_pct=35)
    log.charge(call)
    log.cost(call)
    assert log.kinds() == []


def test_an_unknown_registry_version_is_a_difference_never_a_zero_price() -> None:
    log = Log()
    log.job("j1")
    uid = log.usage("j1")
    call = log.call(uid, "j1", registry_version="1999-01-01")
    log.charge(call)
    log.cost(call)
    [diff] = log.fold.differences()
    assert diff.kind == "unpriceable"
    assert "no pricing registry version '1999-01-01'" in diff.detail


def test_a_usage_charged_twice_is_a_difference() -> None:
    log = Log()
    log.job("j1")
    call = log.billed("j1")
    # Past the duplicate window, under another id: the second debit is real money.
    log.charge(call, event_id="charge:again")
    assert log.kinds() == ["double_charge"]
    # The projection keeps the first charge only (its usage row's key is the usage id).
    assert [r[0] for r in log.fold.expected().usage_rows] == [call.usage_id]


def test_a_usage_with_no_charge_is_pending_then_a_difference() -> None:
    log = Log()
    log.job("j1")
    log.usage("j1")
    [pending] = log.fold.pending()
    assert pending.kind == "unbilled_usage"
    assert log.kinds() == ["unbilled_usage"]
    # Stored after the audit began (beyond its horizon): in flight, not judged.
    assert log.fold.differences(pending_upto=1) == []


def test_a_charge_of_no_usage_is_a_difference() -> None:
    log = Log()
    log.job("j1")
    call = log.call("j1:usage:9", "j1")
    log.charge(call)
    log.cost(call)
    assert log.kinds() == ["charge_without_usage"]


def test_a_charge_that_differs_from_its_usage_is_a_difference() -> None:
    log = Log()
    log.job("j1")
    uid = log.usage("j1", tokens=ModelUsage(input_tokens=10, output_tokens=5))
    call = log.call(uid, "j1")  # billed 1,000 / 500 tokens
    log.charge(call)
    log.cost(call)
    kinds = log.kinds()
    assert kinds[0] == "charge_mismatch"
    assert "input_tokens 1000 (usage says 10)" in log.fold.differences()[0].detail


def test_a_job_cost_that_differs_from_its_charge_is_a_difference() -> None:
    log = Log()
    log.job("j1")
    uid = log.usage("j1")
    call = log.call(uid, "j1")
    log.charge(call)
    log.cost(msgspec.structs.replace(call, billed_micros=call.billed_micros * 2))
    assert log.kinds() == ["job_cost_mismatch"]
    # The jobs view adds what job.cost says: the audit expects what the log says.
    assert log.fold.expected().job_cost_micros == [("j1", P, call.billed_micros * 2)]


def test_a_job_cost_recorded_twice_or_without_a_charge_is_a_difference() -> None:
    log = Log()
    log.job("j1")
    call = log.billed("j1")
    log.put("job", "j1", JobCharged(call=call), "cost:again")
    orphan = log.call("j1:usage:7", "j1", step=7)
    log.cost(orphan)
    assert log.kinds() == ["double_job_cost", "job_cost_without_charge"]


def test_a_charge_whose_job_cost_is_missing_is_pending() -> None:
    log = Log()
    log.job("j1")
    uid = log.usage("j1")
    log.charge(log.call(uid, "j1"))
    assert [d.kind for d in log.fold.pending()] == ["missing_job_cost"]


def test_a_stamped_balance_that_is_not_the_folded_one_is_a_difference() -> None:
    log = Log()
    log.grant(500)
    log.balance += 1  # the writer's stamp drifts from its own entries
    log.grant(500)
    [diff] = log.fold.differences()
    assert diff.kind == "balance_stamp"
    assert "says the balance is 1001 micros" in diff.detail


def test_an_unreadable_ledger_message_is_a_difference() -> None:
    log = Log()
    log.seq += 1
    feed(log.fold, log.seq, f"ev.{P}.ledger.{P}", b"not json")
    assert log.kinds() == ["undecodable"]


def _media(log: Log, job_id: str, billed: int | None = None) -> None:
    """A media generation at openai/gpt-image-2's low x 1024x768 row (6,000 micros)."""
    inputs = {"quality": "low", "size": "1024x768"}
    uid = f"{job_id}:media:1"
    log.put(
        "job",
        job_id,
        MediaUsageRecorded(call=1, provider="fal", model="openai/gpt-image-2", inputs=inputs),
        uid,
    )
    call = log.call(
        uid,
        job_id,
        model="openai/gpt-image-2",
        provider="fal",
        input_tokens=0,
        output_tokens=0,
        kind="media",
        media_inputs=inputs,
        media_outputs={},
        billed_micros=6_000 if billed is None else billed,
    )
    log.charge(call)
    log.cost(call)


def test_a_media_charge_at_its_row_is_clean() -> None:
    log = Log()
    log.grant(100_000)
    log.job("j1")
    _media(log, "j1")
    assert log.kinds() == []
    assert [r[12] for r in log.fold.expected().usage_rows] == [6_000]


def test_a_media_charge_at_another_rate_than_its_row_is_a_difference() -> None:
    log = Log()
    log.grant(100_000)
    log.job("j1")
    _media(log, "j1", billed=253_000)  # the default row's price, not the low x 1024x768 one
    assert log.kinds() == ["price_mismatch"]
