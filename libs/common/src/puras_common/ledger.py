"""Ledger entries as a pure function of ledger events: the rows of billing's ledger
projection, and what the audit expects them to be (one function, so the two cannot
drift apart)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from puras_common.events.base import Envelope, Event
from puras_common.events.types import CreditCharged, CreditGranted

__all__ = ["LedgerEntry", "entry_for"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: str
    project_id: str
    kind: str
    """``grant`` (a top-up, positive) or ``charge`` (a billed call, negative)."""
    micros: int
    """Signed change of the balance."""
    note: str
    at: datetime


def entry_for(env: Envelope, ev: Event | None) -> LedgerEntry | None:
    if isinstance(ev, CreditGranted):
        return LedgerEntry(
            entry_id=env.id,
            project_id=env.project_id,
            kind="grant",
            micros=ev.micros,
            note=ev.note,
            at=env.at,
        )
    if isinstance(ev, CreditCharged):
        c = ev.call
        return LedgerEntry(
            entry_id=env.id,
            project_id=env.project_id,
            kind="charge",
            micros=-c.billed_micros,
            note=f"job {c.job_id} step {c.step}: {c.provider} {c.model}",
            at=env.at,
        )
    return None
