"""What a projection is: tables, the subjects it reads, and how it applies events."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import asyncpg

# Defined with the events so that pure folds can take it without importing I/O.
from puras_common.events.recorded import RecordedEvent

__all__ = ["Projection", "RecordedEvent"]


class Projection(ABC):
    """A Postgres view of the log. Applying an event twice must change nothing.

    ``apply`` runs inside the transaction that also advances the checkpoint, on a
    connection whose ``search_path`` is the projection's schema: use unqualified names.
    Rows must derive from events only (no ``now()``), so a rebuild equals the live tables.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    """Bump when the tables' shape changes: the projection is then rebuilt from the log."""
    filter_subjects: ClassVar[list[str]]
    tables: ClassVar[list[str]]
    """Tables owned by this projection, in creation order."""
    ddl: ClassVar[str]
    """CREATE TABLE / INDEX statements for ``tables``."""
    compare_order: ClassVar[dict[str, str]] = {}
    """Per table, the ORDER BY used when showing differences."""

    @abstractmethod
    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None: ...
