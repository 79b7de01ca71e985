"""The ledger's writer stamps each entry with the balance after it and announces each
crossing of zero, both ways, once (B3, J7): on the in-memory ledger."""

from __future__ import annotations

import contextlib

from billing_fakes import FakeLedgerLog
from fake_event_log import FakeEventLog

from puras_billing.app.ledger import LedgerWriter
from puras_common.events.commands import GrantCredit
from puras_common.events.subjects import AGG_LEDGER, event_subject
from puras_common.events.types import (
    BalanceDepleted,
    BalanceRestored,
    BilledCall,
    CreditCharged,
    CreditGranted,
)
from puras_common.ids import new_id

P = "proj-1"


def _call(micros: int, usage_id: str | None = None) -> BilledCall:
    return BilledCall(
        usage_id=usage_id or new_id(),
        job_id="job-1",
        step=1,
        provider="anthropic",
        model="claude/sonnet-4-6",
        billed_micros=micros,
        registry_version="2026-12-01",
        margin_pct=20,
    )


def _grant(micros: int) -> GrantCredit:
    return GrantCredit(grant_id=new_id(), project_id=P, micros=micros)


def _ledger(log: FakeEventLog) -> list[object]:
    return [r.event for r in log.on_subject(event_subject(P, AGG_LEDGER, P))]


def _story(log: FakeEventLog) -> list[tuple[str, int | None]]:
    out: list[tuple[str, int | None]] = []
    for ev in _ledger(log):
        match ev:
            case CreditGranted() | CreditCharged() | BalanceDepleted() | BalanceRestored():
                out.append((ev.type, ev.balance_micros))
    return out


async def test_entries_carry_the_balance_and_each_crossing_is_announced_both_ways() -> None:
    log = FakeEventLog()
    w = LedgerWriter(FakeLedgerLog(log))
    await w.grant(_grant(1000), redelivered=False)
    await w.charge(_call(600), project_id=P, redelivered=False)
    await w.charge(_call(600), project_id=P, redelivered=False)
    await w.charge(_call(50), project_id=P, redelivered=False)
    await w.grant(_grant(500), redelivered=False)
    await w.grant(_grant(500), redelivered=False)
    assert _story(log) == [
        ("ledger.credit_granted", 1000),
        ("ledger.charged", 400),
        ("ledger.charged", -200),
        ("ledger.balance_depleted", -200),
        ("ledger.charged", -250),
        ("ledger.credit_granted", 250),
        ("ledger.balance_restored", 250),
        ("ledger.credit_granted", 750),
    ]
    assert await w.balance(P) == 750


async def test_a_balance_of_exactly_zero_is_depleted() -> None:
    log = FakeEventLog()
    w = LedgerWriter(FakeLedgerLog(log))
    await w.grant(_grant(600), redelivered=False)
    await w.charge(_call(600), project_id=P, redelivered=False)
    assert _story(log)[-1] == ("ledger.balance_depleted", 0)


class DiesAfterEntry(FakeLedgerLog):
    """Stores the entry, then dies before the announcement is written."""

    def __init__(self, log: FakeEventLog) -> None:
        super().__init__(log)
        self.armed = True

    async def append(self, event, *, project_id, event_id, expected_last_seq):  # type: ignore[no-untyped-def]
        if self.armed and isinstance(event, BalanceDepleted):
            self.armed = False
            raise ConnectionError("billing died")
        return await super().append(
            event, project_id=project_id, event_id=event_id, expected_last_seq=expected_last_seq
        )


async def test_an_announcement_a_crash_left_unwritten_is_written_by_the_redelivery() -> None:
    log = FakeEventLog()
    dying = DiesAfterEntry(log)
    await LedgerWriter(dying).grant(_grant(100), redelivered=False)
    call = _call(300)
    with contextlib.suppress(ConnectionError):
        await LedgerWriter(dying).charge(call, project_id=P, redelivered=False)
    assert [type(e) for e in _ledger(log)] == [CreditGranted, CreditCharged]
    # A fresh replica takes the redelivered usage: the charge is found, the crossing owed.
    fresh = LedgerWriter(FakeLedgerLog(log))
    assert await fresh.charge(call, project_id=P, redelivered=True) == call
    assert _story(log)[-1] == ("ledger.balance_depleted", -200)
    await fresh.announce(P)
    assert len([e for e in _ledger(log) if isinstance(e, BalanceDepleted)]) == 1


async def test_two_writers_keep_one_chain_and_one_announcement() -> None:
    log = FakeEventLog()
    a, b = LedgerWriter(FakeLedgerLog(log)), LedgerWriter(FakeLedgerLog(log))
    await a.grant(_grant(1000), redelivered=False)
    await b.charge(_call(700), project_id=P, redelivered=False)  # b reads a's grant
    await a.charge(_call(700), project_id=P, redelivered=False)  # a reads b's charge
    await b.announce(P)
    assert _story(log) == [
        ("ledger.credit_granted", 1000),
        ("ledger.charged", 300),
        ("ledger.charged", -400),
        ("ledger.balance_depleted", -400),
    ]
