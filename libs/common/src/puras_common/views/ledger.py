"""Credit balance per project: a pure fold over ledger events."""

from __future__ import annotations

from puras_common.events.types import CreditGranted
from puras_common.projection.base import RecordedEvent

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
        if isinstance(ev, CreditGranted):
            before = self.balances.get(pid, 0)
            after = before + ev.micros
            self.balances[pid] = after
            return before, after
        return None
