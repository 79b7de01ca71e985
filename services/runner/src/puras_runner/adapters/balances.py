"""A project's balance from its ledger's last event (billing stamps every entry, and
every announcement of a crossing of zero, with the balance after it): one direct get,
no fold and no database."""

from __future__ import annotations

from puras_common.bus import Bus
from puras_common.events.base import DecodeError, decode_envelope, decode_event
from puras_common.events.subjects import AGG_LEDGER, event_subject
from puras_common.events.types import (
    BalanceDepleted,
    BalanceRestored,
    CreditCharged,
    CreditGranted,
)

__all__ = ["LedgerBalances"]


class LedgerBalances:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def balance(self, project_id: str) -> int | None:
        last = await self._bus.last_subject_message(
            event_subject(project_id, AGG_LEDGER, project_id)
        )
        if last is None:
            return None
        try:
            ev = decode_event(decode_envelope(last[1]))
        except DecodeError:
            return None  # a newer build's entry: the balance is not known here
        match ev:
            case CreditGranted() | CreditCharged() | BalanceDepleted() | BalanceRestored():
                return ev.balance_micros
            case _:
                return None
