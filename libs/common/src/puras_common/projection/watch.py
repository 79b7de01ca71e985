"""Waiting for a projection to reach a sequence, across processes (read-your-writes).

Projectors ``NOTIFY puras_projection, '<schema>.<name>:<seq>'`` in the transaction that
advances their checkpoint. A :class:`CheckpointWatcher` LISTENs on one connection and
wakes waiters when the sequence they need is reached; it reads the table once at start
and again when it (re)connects, so a notification missed while disconnected is not lost.

It also keeps the number of unresolved quarantined events per projection (``quarantined``),
read at start and again on every ``NOTIFY puras_quarantine`` (a projector quarantining, an
operator resolving or retrying), so any replica's ``/readyz`` can report them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from puras_common.db import quote_ident
from puras_common.logging import get_logger
from puras_common.projection.quarantine import QUARANTINE_CHANNEL
from puras_common.projection.runner import NOTIFY_CHANNEL
from puras_common.sequence import SequenceBarrier

__all__ = ["CheckpointWatcher"]

log = get_logger(__name__)


class CheckpointWatcher:
    def __init__(self, dsn: str, *, schema: str = "public") -> None:
        self._dsn = dsn
        self._schema = schema
        self._conn: asyncpg.Connection | None = None
        self._seqs: dict[str, SequenceBarrier] = {}
        self._query = asyncio.Lock()
        self.quarantined: dict[str, int] = {}
        """Unresolved quarantined events per projection of this schema."""
        self._on_quarantine_change: list[Callable[[], Awaitable[None]]] = []

    def on_quarantine_change(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Call ``fn`` after each recount (an entry added, resolved or retried)."""
        self._on_quarantine_change.append(fn)

    async def start(self) -> None:
        self._conn = await asyncpg.connect(self._dsn)
        await self._conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        await self._conn.add_listener(QUARANTINE_CHANNEL, self._on_quarantine)
        await self.refresh()
        await self.count_quarantined()

    async def count_quarantined(self) -> None:
        if self._conn is None:
            return
        try:
            async with self._query:
                rows = await self._conn.fetch(
                    "SELECT projection, count(*) AS n "  # noqa: S608
                    f"FROM {quote_ident(self._schema)}.projection_quarantine "
                    "WHERE resolved_at IS NULL GROUP BY projection"
                )
        except asyncpg.UndefinedTableError:
            rows = []
        self.quarantined = {str(r["projection"]): int(r["n"]) for r in rows}

    def _on_quarantine(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        # asyncpg hands NOTIFY payloads over as str; the listener protocol says object.
        if str(payload).partition(".")[0] == self._schema:
            asyncio.get_running_loop().create_task(self._count_logged())

    async def _count_logged(self) -> None:
        try:
            await self.count_quarantined()
            for fn in self._on_quarantine_change:
                await fn()
        except Exception as exc:  # a lost connection: the next notification counts again
            log.warning("cannot count quarantined events", error=str(exc))

    async def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def refresh(self) -> None:
        assert self._conn is not None
        try:
            async with self._query:
                rows = await self._conn.fetch(
                    # The schema name is ours (settings), quoted; no user input reaches this.
                    f"SELECT name, last_seq FROM {quote_ident(self._schema)}.projection_checkpoints"  # noqa: S608
                )
        except asyncpg.UndefinedTableError:
            rows = []
        for r in rows:
            self.note(str(r["name"]), int(r["last_seq"]))

    def _barrier(self, name: str) -> SequenceBarrier:
        b = self._seqs.get(name)
        if b is None:
            b = self._seqs[name] = SequenceBarrier()
        return b

    def seq(self, name: str) -> int:
        b = self._seqs.get(name)
        return b.seq if b is not None else 0

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        target, _, seq = str(payload).rpartition(":")
        schema, _, name = target.partition(".")
        if schema != self._schema or not seq.isdigit():
            return
        self.note(name, int(seq))

    def note(self, name: str, seq: int) -> None:
        """Projection ``name`` committed ``seq`` (heard from Postgres, or from a projector
        of this process, which needs no round trip)."""
        self._barrier(name).advance(seq)

    async def wait_for(self, name: str, seq: int, timeout: float) -> bool:
        """Wait (bounded) until projection ``name`` has committed ``seq``."""
        return await self._barrier(name).wait_for(seq, timeout)
