"""The ledger's one writer: every ledger event (grants, charges) is appended here.

Each append is guarded by the project's last ledger sequence, so two replicas (or two
commands of one project) never append blindly: the loser reads again and appends after. A command
is recorded once: its event id is the message id (JetStream drops a repeat within the
log's duplicate window), and a command delivered again is first looked up in the ledger,
which holds beyond any window. A usage event's charge is recorded the same way, its
event id derived from the usage event's.

Every entry carries the balance after it, and a crossing of zero (either way) is
announced by an event of its own right after the entry (``puras_billing.domain.balance``).
The writer keeps each project's fold in memory and reads only what was appended since:
the guard tells it when another replica wrote.
"""

from __future__ import annotations

from collections.abc import Callable

from puras_billing.app.ports import LedgerLog
from puras_billing.domain.balance import LedgerState
from puras_common.bus.client import ConcurrencyConflict
from puras_common.events.base import Event
from puras_common.events.commands import GrantCredit
from puras_common.events.ids import balance_crossed_id, credit_charged_id, credit_granted_id
from puras_common.events.types import (
    BalanceDepleted,
    BalanceRestored,
    BilledCall,
    CreditCharged,
    CreditGranted,
)
from puras_common.logging import get_logger

__all__ = ["APPEND_ATTEMPTS", "InvalidCommand", "LedgerWriter"]

log = get_logger(__name__)

APPEND_ATTEMPTS = 50
"""Reads and appends before a busy project's command (or charge) is left for redelivery."""


class InvalidCommand(ValueError):
    """A command no delivery can carry out (it is dropped, not retried)."""


class LedgerWriter:
    def __init__(self, ledger: LedgerLog) -> None:
        self._ledger = ledger
        self._states: dict[str, LedgerState] = {}

    async def grant(self, cmd: GrantCredit, *, redelivered: bool) -> int:
        """Record the grant (B4); returns the sequence of its ledger event."""
        if cmd.micros <= 0:
            # The gateway checks amounts; a command that skipped it must not debit.
            raise InvalidCommand(f"grant {cmd.grant_id}: amount must be positive, got {cmd.micros}")
        event_id = credit_granted_id(cmd.grant_id)
        if redelivered:
            # Maybe recorded by a delivery that died before its ack, longer ago than the
            # duplicate window remembers.
            seq = await self._ledger.find(cmd.project_id, event_id)
            if seq is not None:
                log.info("grant recorded before", grant_id=cmd.grant_id, seq=seq)
                await self.announce(cmd.project_id)
                return seq
        seq, _ = await self._append_once(
            lambda state: CreditGranted(
                grant_id=cmd.grant_id,
                micros=cmd.micros,
                note=cmd.note,
                balance_micros=state.balance + cmd.micros,
            ),
            project_id=cmd.project_id,
            event_id=event_id,
        )
        log.info("credit granted", project_id=cmd.project_id, micros=cmd.micros, seq=seq)
        return seq

    async def charge(self, call: BilledCall, *, project_id: str, redelivered: bool) -> BilledCall:
        """Debit a billed call from the project's balance (B1), once per usage event;
        returns the call as the ledger holds it (a charge recorded before keeps the price
        it was recorded at). The balance may go below zero: a running job is not stopped
        (B3)."""
        if call.billed_micros < 0:
            raise InvalidCommand(f"charge of usage {call.usage_id}: negative price")
        event_id = credit_charged_id(call.usage_id)
        if redelivered:
            # Maybe charged by a delivery that died before its ack (or before the job's
            # side was recorded), longer ago than the duplicate window remembers.
            before = await self.charged(project_id, call.usage_id)
            if before is not None:
                log.info("usage charged before", usage_id=call.usage_id)
                await self.announce(project_id)
                return before
        seq, duplicate = await self._append_once(
            lambda state: CreditCharged(
                call=call, balance_micros=state.balance - call.billed_micros
            ),
            project_id=project_id,
            event_id=event_id,
        )
        if duplicate:
            # Another delivery charged it within the duplicate window: its price stands.
            return await self.charged(project_id, call.usage_id) or call
        log.info(
            "usage charged",
            project_id=project_id,
            job_id=call.job_id,
            usage_id=call.usage_id,
            micros=call.billed_micros,
            seq=seq,
        )
        return call

    async def charged(
        self, project_id: str, usage_id: str, *, after_seq: int = 0
    ) -> BilledCall | None:
        """The call charged for a usage event, if it was (reads the project's ledger after
        ``after_seq``: a charge is appended after its usage event, so the usage event's
        sequence bounds the search)."""
        event_id = credit_charged_id(usage_id)
        found = await self._ledger.find_event(project_id, event_id, after_seq=after_seq)
        if found is None:
            return None
        seq, ev = found
        if not isinstance(ev, CreditCharged):
            raise RuntimeError(f"ledger event {event_id} at {seq} is not a charge")
        return ev.call

    async def announce(self, project_id: str) -> None:
        """Write the crossing of zero the project's ledger owes, if any (an entry whose
        announcement a crash left unwritten; two replicas write the same one once)."""
        for _ in range(APPEND_ATTEMPTS):
            state = await self._caught_up(project_id)
            owed = state.owed()
            if owed is None or state.last_entry_id is None:
                return
            event: Event = (
                BalanceDepleted(balance_micros=state.balance, cause_id=state.last_entry_id)
                if owed == "depleted"
                else BalanceRestored(balance_micros=state.balance, cause_id=state.last_entry_id)
            )
            event_id = balance_crossed_id(state.last_entry_id, owed)
            try:
                pub = await self._ledger.append(
                    event, project_id=project_id, event_id=event_id, expected_last_seq=state.seq
                )
            except ConcurrencyConflict:
                continue
            if not pub.duplicate:
                state.apply(pub.seq, event_id, event)
            log.info("balance " + owed, project_id=project_id, micros=state.balance, seq=pub.seq)
            return
        raise RuntimeError(f"ledger of {project_id} kept moving; its crossing will be retried")

    async def balance(self, project_id: str) -> int:
        """The project's balance as its ledger says now."""
        return (await self._caught_up(project_id)).balance

    async def _caught_up(self, project_id: str) -> LedgerState:
        state = self._states.setdefault(project_id, LedgerState())
        if await self._ledger.last_seq(project_id) > state.seq:
            async for seq, event_id, ev in self._ledger.events(project_id, after_seq=state.seq):
                state.apply(seq, event_id, ev)
        return state

    async def _append_once(
        self, make: Callable[[LedgerState], Event], *, project_id: str, event_id: str
    ) -> tuple[int, bool]:
        """``(sequence, duplicate)`` of the guarded append of ``make(state)``, then the
        crossing it caused, announced."""
        for _ in range(APPEND_ATTEMPTS):
            state = await self._caught_up(project_id)
            event = make(state)
            try:
                pub = await self._ledger.append(
                    event, project_id=project_id, event_id=event_id, expected_last_seq=state.seq
                )
            except ConcurrencyConflict:
                continue
            if not pub.duplicate:
                state.apply(pub.seq, event_id, event)
            await self.announce(project_id)
            return pub.seq, pub.duplicate
        raise RuntimeError(f"ledger of {project_id} kept moving; {event_id} will be redelivered")
