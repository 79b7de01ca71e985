"""A key's spend in its current day and month, and the holds of calls in flight (Z1): a
pure value, changed only by the three functions below.

Per-key spend limits hold under concurrency because every billable call first
*reserves* its worst case (its input plus ``max_tokens`` of output at the slug's rates)
against the limit, on one record per key that is changed by compare-and-set, and the
real price *settles* the hold once billing has charged the call. Jobs that each check
before the others spend therefore see each other's holds: the sum of what is spent and
what is held never passes the limit (LiteLLM's budgets are a known counter-example:
each request checks the spend of calls that have landed, not of calls in flight).

A hold expires (a runner that died mid-call never settles or releases it); the call's
charge, when it lands, is counted all the same. A settle is counted once: billing
settles a charge it records for the first time, and a redelivery only if the hold is
still there (the settle that removed it counted it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from puras_common.events.types import SpendLimit

__all__ = [
    "Refused",
    "SpendWindow",
    "period_begins",
    "period_start",
    "release",
    "reserve",
    "settle",
    "spent_in",
]


class SpendWindow(msgspec.Struct, kw_only=True):
    """What one key spent in the current UTC day and month, and what is held."""

    day: str = ""
    """The day ``day_spent`` counts (``2026-12-01``; empty: none yet)."""
    day_spent: int = 0
    month: str = ""
    """The month ``month_spent`` counts (``2026-12``)."""
    month_spent: int = 0
    holds: dict[str, tuple[int, float]] = msgspec.field(default_factory=dict)
    """Hold id (the call's usage event id) -> (micros held, expiry as a UNIX time)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """The call would take the key over its limit."""

    spent: int
    """What the key has spent and holds in the period, without this call."""
    limit: int


def period_begins(period: str, now: datetime) -> datetime:
    """The instant the period ``now`` is in began (UTC midnight of the day or month)."""
    utc = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return utc if period == "day" else utc.replace(day=1)


def period_start(period: str, now: datetime) -> str:
    """The label of the period ``now`` is in: ``2026-12-01`` (day) or ``2026-12`` (month)."""
    utc = now.astimezone(UTC)
    return utc.strftime("%Y-%m-%d") if period == "day" else utc.strftime("%Y-%m")


def _current(w: SpendWindow, now: datetime) -> SpendWindow:
    """``w`` with its counters moved to the periods ``now`` is in, expired holds gone."""
    day, month = period_start("day", now), period_start("month", now)
    t = now.timestamp()
    return SpendWindow(
        day=day,
        day_spent=w.day_spent if w.day == day else 0,
        month=month,
        month_spent=w.month_spent if w.month == month else 0,
        holds={k: v for k, v in w.holds.items() if v[1] > t},
    )


def spent_in(w: SpendWindow, period: str, now: datetime, *, without: str = "") -> int:
    """Spent plus held in the period ``now`` is in (the hold ``without`` left out)."""
    c = _current(w, now)
    spent = c.day_spent if period == "day" else c.month_spent
    return spent + sum(m for k, (m, _) in c.holds.items() if k != without)


def reserve(
    w: SpendWindow,
    limit: SpendLimit,
    *,
    hold_id: str,
    micros: int,
    now: datetime,
    expires_at: datetime,
) -> SpendWindow | Refused:
    """Hold ``micros`` for a call if the key stays within ``limit``; a hold of the same id
    (a call tried again) is replaced."""
    spent = spent_in(w, limit.period, now, without=hold_id)
    if spent + micros > limit.micros:
        return Refused(spent=spent, limit=limit.micros)
    c = _current(w, now)
    c.holds[hold_id] = (micros, expires_at.timestamp())
    return c


def release(w: SpendWindow, *, hold_id: str, now: datetime) -> SpendWindow | None:
    """The call was not made (or failed upstream, B5): its hold goes. ``None``: no change."""
    if hold_id not in w.holds:
        return None
    c = _current(w, now)
    c.holds.pop(hold_id, None)
    return c


def settle(
    w: SpendWindow, *, hold_id: str, micros: int, now: datetime, first_charge: bool
) -> SpendWindow | None:
    """Count a charged call, in place of its hold. ``first_charge``: billing recorded the
    charge just now (count it, held or not); else only a hold still there is settled,
    since the settle that removed it counted the call. ``None``: nothing to change."""
    if not first_charge and hold_id not in w.holds:
        return None
    c = _current(w, now)
    c.holds.pop(hold_id, None)
    c.day_spent += micros
    c.month_spent += micros
    return c
