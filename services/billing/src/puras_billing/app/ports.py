"""What billing's handlers need from the world, as protocols (the NATS adapter in
``puras_billing.adapters``; in-memory ones in the unit tests; one contract suite for both)."""

from __future__ import annotations

from typing import Protocol

from puras_common.bus.client import Published
from puras_common.events.base import Event

__all__ = ["LedgerLog"]


class LedgerLog(Protocol):
    """The projects' ledger subjects of the event log, ``ev.<project>.ledger.<project>``."""

    async def last_seq(self, project_id: str) -> int:
        """Sequence of the project's last ledger event (0 when it has none)."""
        ...

    async def append(
        self, event: Event, *, project_id: str, event_id: str, expected_last_seq: int
    ) -> Published:
        """Store ``event`` on the project's ledger subject if its last sequence is still
        ``expected_last_seq``, else raise :class:`~puras_common.bus.ConcurrencyConflict`
        and store nothing. That check comes first; then an ``event_id`` stored before
        (within the log's duplicate window) is not stored again: the result is
        ``duplicate``, with the first one's sequence."""
        ...

    async def find(self, project_id: str, event_id: str) -> int | None:
        """The sequence of the project's ledger event with this id, if there is one (reads
        the project's whole ledger: for the rare redelivered command, not every one)."""
        ...
