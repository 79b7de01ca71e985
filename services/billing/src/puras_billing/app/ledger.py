"""The ledger's one writer: every ledger event (grants, charges, announcements of a
crossing of zero) is appended here.

Each append is guarded by the project's last ledger sequence, so two replicas (or two
commands of one project) never append blindly: the loser reads what was appended and
tries again. A command is recorded once: its event id is the message id (JetStream drops
a repeat within the log's duplicate window), and a command delivered again is first
looked up in the ledger, which holds beyond any window. A usage event's charge is
recorded the same way, its event id derived from the usage event's.

Every entry carries the balance after it, and a crossing of zero (either way) is
announced by an event of its own right after the entry (``puras_billing.domain.balance``).

The writer keeps each project's ledger folded in memory: the balance, the last
announcement, and the usage ids it charged (so "was this usage charged?" is a look-up,
not a read of the ledger). It reads a project's ledger once, then only what another
replica appended, which the guard reveals: an append is made at the sequence the fold
has reached, and refused if the ledger moved past it. Operations on one project are
serialized within a process, so its own deliveries never race each other for the
guard (and the charges of different projects go on in parallel).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from puras_billing.app.ports import LedgerLog
from puras_billing.domain.balance import LedgerState
from puras_common.bus.client import ConcurrencyConflict, Published
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
"""Appends refused by the guard before a project's command (or charge) is left for
redelivery (each refusal is another replica's append: one read catches up)."""


class InvalidCommand(ValueError):
    """A command no delivery can carry out (it is dropped, not retried)."""


class LedgerWriter:
    def __init__(self, ledger: LedgerLog) -> None:
        self._ledger = ledger
        self._states: dict[str, LedgerState] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # -- commands and charges --------------------------------------------------------------

    async def grant(self, cmd: GrantCredit, *, redelivered: bool) -> int:
        """Record the grant (B4); returns the sequence of its ledger event."""
        if cmd.micros <= 0:
            # The gateway checks amounts; a command that skipped it must not debit.
            raise InvalidCommand(f"grant {cmd.grant_id}: amount must be positive, got {cmd.micros}")
        event_id = credit_granted_id(cmd.grant_id)
        p = cmd.project_id
        async with self._lock(p):
            state = await self._state(p)
            if redelivered:
                # Maybe recorded by a delivery that died before its ack, longer ago than
                # the duplicate window remembers.
                seq = await self._ledger.find(p, event_id)
                if seq is not None:
                    log.info("grant recorded before", grant_id=cmd.grant_id, seq=seq)
                    await self._catch_up(p, state)
                    await self._announce(p, state)
                    return seq
            seq, duplicate = await self._append(
                p,
                state,
                event_id,
                lambda: CreditGranted(
                    grant_id=cmd.grant_id,
                    micros=cmd.micros,
                    note=cmd.note,
                    balance_micros=state.balance + cmd.micros,
                ),
            )
        if not duplicate:
            log.info("credit granted", project_id=p, micros=cmd.micros, seq=seq)
        return seq

    async def charge(self, call: BilledCall, *, project_id: str, redelivered: bool) -> BilledCall:
        """Debit a billed call from the project's balance (B1), once per usage event;
        returns the call as the ledger holds it (a charge recorded before keeps the price
        it was recorded at). The balance may go below zero: a running job is not stopped
        (B3)."""
        charged = await self.record_charge(call.usage_id, lambda: call, project_id=project_id)
        return charged[0]

    async def record_charge(
        self,
        usage_id: str,
        price: Callable[[], BilledCall],
        *,
        project_id: str,
        usage_seq: int = 0,
    ) -> tuple[BilledCall, bool]:
        """Charge the usage event ``usage_id`` (stored at ``usage_seq``: its charge comes
        after it) at ``price()``, once; returns the call as the ledger holds it, and
        whether this call recorded it (False: it was before, at the price it was
        recorded at; ``price`` is then not called)."""
        p = project_id
        priced: BilledCall | None = None
        async with self._lock(p):
            state = await self._state(p)
            for _ in range(APPEND_ATTEMPTS):
                before = await self._charged(p, state, usage_id, usage_seq)
                if before is not None:
                    # A delivery that died before its ack charged it; it may have died
                    # before announcing the crossing its charge caused, too.
                    log.info("usage charged before", usage_id=usage_id)
                    await self._announce(p, state)
                    return before, False
                call = priced = priced or price()
                if call.billed_micros < 0:
                    raise InvalidCommand(f"charge of usage {call.usage_id}: negative price")
                event = CreditCharged(call=call, balance_micros=state.balance - call.billed_micros)
                pub = await self._append_at(p, state, event, credit_charged_id(usage_id))
                if pub is None:
                    continue
                if pub.duplicate:
                    # Charged at or before what the fold has seen (the guard passed), by
                    # a delivery the fold no longer remembers: the look-up finds it.
                    found = await self._ledger.find_event(p, credit_charged_id(usage_id))
                    if found is None or not isinstance(found[1], CreditCharged):
                        raise RuntimeError(f"charge of {usage_id} is a duplicate not found")
                    return found[1].call, False
                await self._announce(p, state)
                log.info(
                    "usage charged",
                    project_id=p,
                    job_id=call.job_id,
                    usage_id=call.usage_id,
                    micros=call.billed_micros,
                    seq=pub.seq,
                )
                return call, True
        raise RuntimeError(f"ledger of {p} kept moving; usage {usage_id} will be redelivered")

    async def announce(self, project_id: str) -> None:
        """Write the crossing of zero the project's ledger owes, if any (an entry whose
        announcement a crash left unwritten; two replicas write the same one once)."""
        async with self._lock(project_id):
            state = await self._state(project_id)
            await self._refresh(project_id, state)
            await self._announce(project_id, state)

    async def balance(self, project_id: str) -> int:
        """The project's balance as its ledger says now."""
        async with self._lock(project_id):
            state = await self._state(project_id)
            await self._refresh(project_id, state)
            return state.balance

    # -- under the project's lock ---------------------------------------------------------

    def _lock(self, project_id: str) -> asyncio.Lock:
        return self._locks.setdefault(project_id, asyncio.Lock())

    async def _state(self, project_id: str) -> LedgerState:
        """The project's fold, read from its ledger the first time."""
        state = self._states.get(project_id)
        if state is None:
            state = LedgerState()
            await self._catch_up(project_id, state)
            self._states[project_id] = state
        return state

    async def _catch_up(self, project_id: str, state: LedgerState) -> None:
        async for seq, event_id, ev in self._ledger.events(project_id, after_seq=state.seq):
            state.apply(seq, event_id, ev)

    async def _refresh(self, project_id: str, state: LedgerState) -> None:
        """Catch up if the ledger moved (one read of its last sequence)."""
        if await self._ledger.last_seq(project_id) > state.seq:
            await self._catch_up(project_id, state)

    async def _charged(
        self, project_id: str, state: LedgerState, usage_id: str, usage_seq: int
    ) -> BilledCall | None:
        """The call charged for a usage event, if it was: from the fold, or (a usage older
        than the fold remembers) from the ledger after the usage event."""
        seq = state.charges.get(usage_id)
        if seq is None and state.knows_charges_after(usage_seq):
            return None
        found = await self._ledger.find_event(
            project_id,
            credit_charged_id(usage_id),
            after_seq=(seq - 1) if seq is not None else usage_seq,
        )
        if found is None:
            return None
        if not isinstance(found[1], CreditCharged):
            raise RuntimeError(f"ledger event {credit_charged_id(usage_id)} is not a charge")
        return found[1].call

    async def _append(
        self, project_id: str, state: LedgerState, event_id: str, make: Callable[[], Event]
    ) -> tuple[int, bool]:
        """``(sequence, duplicate)`` of the guarded append of ``make()`` (made again after
        each catch-up), then the crossing it caused, announced."""
        for _ in range(APPEND_ATTEMPTS):
            pub = await self._append_at(project_id, state, make(), event_id)
            if pub is None:
                continue
            await self._announce(project_id, state)
            return pub.seq, pub.duplicate
        raise RuntimeError(f"ledger of {project_id} kept moving; {event_id} will be redelivered")

    async def _append_at(
        self, project_id: str, state: LedgerState, event: Event, event_id: str
    ) -> Published | None:
        """Append ``event`` at the sequence the fold has reached and fold it; ``None``
        when the guard refused it (another replica appended: the fold has read it, try
        again). A duplicate (stored before, within the window) leaves the fold caught up."""
        try:
            pub = await self._ledger.append(
                event, project_id=project_id, event_id=event_id, expected_last_seq=state.seq
            )
        except ConcurrencyConflict:
            await self._catch_up(project_id, state)
            return None
        if pub.duplicate:
            await self._catch_up(project_id, state)
        else:
            state.apply(pub.seq, event_id, event)
        return pub

    async def _announce(self, project_id: str, state: LedgerState) -> None:
        for _ in range(APPEND_ATTEMPTS):
            owed = state.owed()
            if owed is None or state.last_entry_id is None:
                return
            event: Event = (
                BalanceDepleted(balance_micros=state.balance, cause_id=state.last_entry_id)
                if owed == "depleted"
                else BalanceRestored(balance_micros=state.balance, cause_id=state.last_entry_id)
            )
            event_id = balance_crossed_id(state.last_entry_id, owed)
            pub = await self._append_at(project_id, state, event, event_id)
            if pub is None or pub.duplicate:
                continue
            log.info("balance " + owed, project_id=project_id, micros=state.balance, seq=pub.seq)
            return
        raise RuntimeError(f"ledger of {project_id} kept moving; its crossing will be retried")
