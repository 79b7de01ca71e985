"""Credit balance per project: a pure fold over ledger events."""

from __future__ import annotations

from typing import assert_never

from puras_common.events.recorded import RecordedEvent
from puras_common.events.types import (
    BalanceDepleted,
    BalanceRestored,
    CreditCharged,
    CreditGranted,
    LedgerEvent,
)

__all__ = ["BalancesView"]


class BalancesView:
    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.last_seq = 0

    def balance(self, project_id: str) -> int:
        return self.balances.get(project_id, 0)

    def apply(self, rec: RecordedEvent) -> tuple[int, int] | None:
        """Apply; returns ``(before, after)`` when the project's balance changed."""
        if rec.seq and rec.seq <= self.last_seq:
            return None
        self.last_seq = max(self.last_seq, rec.seq)
        ev = rec.event
        pid = rec.envelope.project_id
        if not isinstance(ev, LedgerEvent):
            return None
        match ev:
            case CreditGranted():
                before = self.balances.get(pid, 0)
                after = before + ev.micros
                self.balances[pid] = after
                return before, after
            case CreditCharged():
                # B3: a running job may drive the balance below zero.
                before = self.balances.get(pid, 0)
                after = before - ev.call.billed_micros
                self.balances[pid] = after
                return before, after
            case BalanceDepleted() | BalanceRestored():
                return None  # announcements of a change already applied
            case _:
                assert_never(ev)
