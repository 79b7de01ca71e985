"""The ledger's one writer: every ledger event is appended here.

Each append is guarded by the project's last ledger sequence, so two replicas (or two
commands of one project) never append blindly: the loser reads again and appends after. A command
is recorded once: its event id is the message id (JetStream drops a repeat within the
log's duplicate window), and a command delivered again is first looked up in the ledger,
which holds beyond any window.
"""

from __future__ import annotations

from puras_billing.app.ports import LedgerLog
from puras_common.bus.client import ConcurrencyConflict
from puras_common.events.base import Event
from puras_common.events.commands import GrantCredit
from puras_common.events.ids import credit_granted_id
from puras_common.events.types import CreditGranted
from puras_common.logging import get_logger

__all__ = ["APPEND_ATTEMPTS", "InvalidCommand", "LedgerWriter"]

log = get_logger(__name__)

APPEND_ATTEMPTS = 50
"""Reads and appends before a busy project's command is left for redelivery."""


class InvalidCommand(ValueError):
    """A command no delivery can carry out (it is dropped, not retried)."""


class LedgerWriter:
    def __init__(self, ledger: LedgerLog) -> None:
        self._ledger = ledger

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
                return seq
        seq = await self._append(
            CreditGranted(grant_id=cmd.grant_id, micros=cmd.micros, note=cmd.note),
            project_id=cmd.project_id,
            event_id=event_id,
        )
        log.info("credit granted", project_id=cmd.project_id, micros=cmd.micros, seq=seq)
        return seq

    async def _append(self, event: Event, *, project_id: str, event_id: str) -> int:
        for _ in range(APPEND_ATTEMPTS):
            last = await self._ledger.last_seq(project_id)
            try:
                pub = await self._ledger.append(
                    event, project_id=project_id, event_id=event_id, expected_last_seq=last
                )
            except ConcurrencyConflict:
                continue
            return pub.seq
        raise RuntimeError(f"ledger of {project_id} kept moving; {event_id} will be redelivered")
