"""A project's ledger folded as its writer needs it: the balance after each event, and
whether the balance's last crossing of zero has been announced.

The writer stamps every entry with the balance after it (so any reader learns the
balance from the ledger's last event) and announces each crossing of zero, both ways, as
an event of its own right after the entry that crossed. An announcement that a crash
left unwritten is written by the next operation on the project: whether one is owed is a
function of the ledger alone (:meth:`LedgerState.owed`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, assert_never

from puras_common.events.base import Event
from puras_common.events.types import (
    BalanceDepleted,
    BalanceRestored,
    CreditCharged,
    CreditGranted,
    LedgerEvent,
)

__all__ = ["INDEXED_CHARGES", "Crossing", "LedgerState", "UnreadableLedger"]

INDEXED_CHARGES = 100_000
"""Charges of one project the fold remembers by usage id (the newest); an older usage
event redelivered is looked up in the ledger itself."""

Crossing = Literal["depleted", "restored"]


class UnreadableLedger(RuntimeError):
    """The ledger holds an event this build cannot read: its balance is unknown, so
    nothing more is appended until a build that reads it runs."""


@dataclass(slots=True)
class LedgerState:
    seq: int = 0
    """Sequence of the last ledger event folded (0: none)."""
    balance: int = 0
    """Grants minus charges, in micros."""
    depleted: bool = False
    """As last announced: True after a ``balance_depleted``, until a ``balance_restored``."""
    last_entry_id: str | None = None
    """Id of the last grant or charge (the cause of an owed announcement)."""
    charges: dict[str, int] = field(default_factory=dict)
    """Usage id -> sequence of its charge, for every charge after ``indexed_after``."""
    indexed_after: int = 0
    """``charges`` holds every charge with a sequence above this one."""

    def knows_charges_after(self, seq: int) -> bool:
        """Whether ``charges`` has every charge after ``seq`` (a usage event's charge
        always comes after it)."""
        return seq >= self.indexed_after

    def apply(self, seq: int, event_id: str, ev: Event | None) -> None:
        if seq <= self.seq:
            return
        if not isinstance(ev, LedgerEvent):
            raise UnreadableLedger(
                f"ledger event {event_id} at sequence {seq} is of a type this build does not "
                "know; run a billing build that does"
            )
        self.seq = seq
        match ev:
            case CreditGranted():
                self.balance += ev.micros
                self.last_entry_id = event_id
            case CreditCharged():
                self.balance -= ev.call.billed_micros
                self.last_entry_id = event_id
                self.charges[ev.call.usage_id] = seq
                if len(self.charges) > INDEXED_CHARGES:
                    # Forget the older half; their usage is looked up in the ledger.
                    old = list(self.charges.items())[: len(self.charges) // 2]
                    for usage_id, _ in old:
                        del self.charges[usage_id]
                    self.indexed_after = max(s for _, s in old)
            case BalanceDepleted():
                self.depleted = True
            case BalanceRestored():
                self.depleted = False
            case _:
                assert_never(ev)

    def owed(self) -> Crossing | None:
        """The announcement the ledger owes, if its balance crossed zero unannounced."""
        if self.last_entry_id is None:
            return None  # no entry yet: a new project's zero is not a crossing
        below = self.balance <= 0
        if below and not self.depleted:
            return "depleted"
        if not below and self.depleted:
            return "restored"
        return None
