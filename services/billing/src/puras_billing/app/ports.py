"""What billing's handlers need from the world, as protocols (the NATS adapter in
``puras_billing.adapters``; in-memory ones in the unit tests; one contract suite for both)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

from puras_common.bus.client import Published
from puras_common.events.base import Event

__all__ = ["JobLog", "LedgerLog", "SpendSettler"]


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

    def events(
        self, project_id: str, *, after_seq: int = 0
    ) -> AsyncIterator[tuple[int, str, Event | None]]:
        """``(sequence, event id, event)`` of the project's ledger events after
        ``after_seq``, in order (``None`` for a type this build does not know)."""
        ...

    async def find(self, project_id: str, event_id: str) -> int | None:
        """The sequence of the project's ledger event with this id, if there is one (reads
        the project's whole ledger: for the rare redelivered command, not every one)."""
        ...

    async def find_event(
        self, project_id: str, event_id: str, *, after_seq: int = 0
    ) -> tuple[int, Event | None] | None:
        """Like :meth:`find`, with the event as stored (``None`` for a type this build
        does not know), reading only the ledger after ``after_seq``."""
        ...


class JobLog(Protocol):
    """The jobs' subjects of the event log, ``ev.<project>.job.<job>``: billing appends a
    job's ``job.cost`` events there (the job subject has other writers: no guard)."""

    async def append(
        self, event: Event, *, project_id: str, job_id: str, event_id: str
    ) -> Published:
        """Store ``event`` on the job's subject; an ``event_id`` stored before (within the
        log's duplicate window) is not stored again: the result is ``duplicate``."""
        ...

    async def find(
        self, project_id: str, job_id: str, event_id: str, *, after_seq: int = 0
    ) -> int | None:
        """The sequence of the job's event with this id after ``after_seq``, if there is
        one (reads the job's subject from there)."""
        ...


class SpendSettler(Protocol):
    """The keys' spend windows (Z1; ``puras_common.spend``): billing counts each charged
    call there, in place of the hold its runner reserved."""

    async def settle(
        self,
        project_id: str,
        key_prefix: str,
        *,
        hold_id: str,
        micros: int,
        now: datetime,
        first_charge: bool,
    ) -> None: ...
