"""Per-key spend windows (Z1): holds count against the limit until settled, a settle
counts once, periods roll over at UTC midnight, expired holds stop counting."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from puras_common.events.types import SpendLimit
from puras_common.spend import (
    Refused,
    SpendWindow,
    period_begins,
    period_start,
    release,
    reserve,
    settle,
    spent_in,
)

NOW = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
DAY = SpendLimit(micros=1_000, period="day")


def _reserve(w: SpendWindow, hold: str, micros: int, now: datetime = NOW) -> SpendWindow:
    out = reserve(
        w, DAY, hold_id=hold, micros=micros, now=now, expires_at=now + timedelta(minutes=15)
    )
    assert isinstance(out, SpendWindow), out
    return out


def test_holds_count_until_the_limit_then_a_call_is_refused_with_the_spend_so_far() -> None:
    w = _reserve(SpendWindow(), "a", 600)
    w = _reserve(w, "b", 300)
    out = reserve(w, DAY, hold_id="c", micros=200, now=NOW, expires_at=LATER)
    assert out == Refused(spent=900, limit=1_000)
    assert isinstance(
        reserve(w, DAY, hold_id="c", micros=100, now=NOW, expires_at=LATER), SpendWindow
    )


def test_a_settle_replaces_the_hold_by_the_price_and_counts_once() -> None:
    w = _reserve(SpendWindow(), "a", 600)
    w2 = settle(w, hold_id="a", micros=250, now=NOW, first_charge=True)
    assert w2 is not None
    assert (w2.day_spent, w2.month_spent, w2.holds) == (250, 250, {})
    # A redelivery of the same charge: the hold is gone, nothing changes.
    assert settle(w2, hold_id="a", micros=250, now=NOW, first_charge=False) is None
    # A redelivery after a settle that died before it was written: the hold is still there.
    again = settle(w, hold_id="a", micros=250, now=NOW, first_charge=False)
    assert again is not None
    assert again.day_spent == 250


def test_a_charge_without_a_hold_still_counts_when_first_recorded() -> None:
    w = settle(SpendWindow(), hold_id="x", micros=70, now=NOW, first_charge=True)
    assert w is not None
    assert spent_in(w, "day", NOW) == 70


def test_a_released_hold_gives_the_budget_back() -> None:
    w = _reserve(SpendWindow(), "a", 900)
    w2 = release(w, hold_id="a", now=NOW)
    assert w2 is not None
    assert spent_in(w2, "day", NOW) == 0
    assert release(w2, hold_id="a", now=NOW) is None


def test_an_expired_hold_stops_counting() -> None:
    w = _reserve(SpendWindow(), "a", 900)
    assert spent_in(w, "day", NOW + timedelta(minutes=16)) == 0


def test_the_day_rolls_over_at_utc_midnight_and_the_month_on_the_first() -> None:
    w = settle(SpendWindow(), hold_id="a", micros=800, now=NOW, first_charge=True)
    assert w is not None
    tomorrow = datetime(2026, 12, 2, 0, 0, 1, tzinfo=UTC)
    assert spent_in(w, "day", tomorrow) == 0
    assert spent_in(w, "month", tomorrow) == 800
    assert spent_in(w, "month", datetime(2027, 1, 1, tzinfo=UTC)) == 0
    assert period_start("day", NOW) == "2026-12-01"
    assert period_start("month", NOW) == "2026-12"
    assert period_begins("day", NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    assert period_begins("month", NOW) == datetime(2026, 12, 1, tzinfo=UTC)


def test_a_hold_tried_again_replaces_itself() -> None:
    w = _reserve(SpendWindow(), "a", 900)
    w = _reserve(w, "a", 950)  # the same call's retry: not 1,850
    assert spent_in(w, "day", NOW) == 950


def test_interleaved_reservers_never_pass_the_limit() -> None:
    """Whatever the order of many jobs' reserves, settles and releases, spent plus held
    never exceeds the limit, and the spend is the sum of the settled prices."""
    rng = random.Random(7)
    for _ in range(200):
        w = SpendWindow()
        held: dict[str, int] = {}
        settled = 0
        for i in range(40):
            op = rng.random()
            if op < 0.5 or not held:
                worst = rng.randint(1, 400)
                out = reserve(w, DAY, hold_id=f"h{i}", micros=worst, now=NOW, expires_at=LATER)
                if isinstance(out, SpendWindow):
                    w, held[f"h{i}"] = out, worst
            elif op < 0.85:
                hold = rng.choice(sorted(held))
                price = rng.randint(0, held.pop(hold))  # the real price: at most the worst case
                out2 = settle(w, hold_id=hold, micros=price, now=NOW, first_charge=True)
                assert out2 is not None
                w, settled = out2, settled + price
            else:
                hold = rng.choice(sorted(held))
                held.pop(hold)
                out3 = release(w, hold_id=hold, now=NOW)
                assert out3 is not None
                w = out3
            assert spent_in(w, "day", NOW) <= DAY.micros
            assert w.day_spent == settled
