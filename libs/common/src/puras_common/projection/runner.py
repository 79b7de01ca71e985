"""Runs a projection: one active replica, batches applied with their checkpoint.

* Single active writer: a session advisory lock per (schema, projection). Other replicas
  block on it and take over when the holder dies (its session ends, the lock is freed).
* Tracking: ``projection_checkpoints(name, version, last_seq)`` in the projection's
  schema, advanced in the same transaction as the rows (compare-and-set on the previous
  value, so a concurrent reset is noticed instead of overwritten).
* Reading: an ordered consumer from ``last_seq + 1``; a batch is whatever is ready.
* Version change: tables dropped and recreated, checkpoint 0, replay from the start.
* Errors are loud: an event that cannot be decoded or applied stops the runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable

import asyncpg
from nats.js import JetStreamContext

from puras_common.bus.follow import EventFollower, RawEvent
from puras_common.db import init_connection, quote_ident
from puras_common.events.base import decode_envelope, decode_event
from puras_common.logging import get_logger
from puras_common.projection.base import Projection, RecordedEvent

__all__ = ["CheckpointMoved", "ProjectorRunner", "decode_batch", "ensure_projection_schema"]

log = get_logger(__name__)

NOTIFY_CHANNEL = "puras_projection"

CHECKPOINT_DDL = """
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name text PRIMARY KEY,
    version integer NOT NULL,
    last_seq bigint NOT NULL
)
"""


class CheckpointMoved(RuntimeError):
    """The checkpoint is not where this runner left it (reset or another writer)."""


def _lock_key(schema: str, name: str) -> int:
    digest = hashlib.sha256(f"puras-projection:{schema}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def decode_batch(raw: list[RawEvent]) -> list[RecordedEvent]:
    out: list[RecordedEvent] = []
    for r in raw:
        env = decode_envelope(r.data)
        out.append(
            RecordedEvent(seq=r.seq, subject=r.subject, envelope=env, event=decode_event(env))
        )
    return out


async def ensure_projection_schema(conn: asyncpg.Connection, proj: Projection, schema: str) -> int:
    """Create the projection's tables if needed (rebuilding on a version change).

    Returns the checkpoint to resume after.
    """
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    await conn.execute(f"SET search_path TO {quote_ident(schema)}")
    async with conn.transaction():
        await conn.execute(CHECKPOINT_DDL)
        row = await conn.fetchrow(
            "SELECT version, last_seq FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
            proj.name,
        )
        if row is not None and row["version"] == proj.version:
            await conn.execute(proj.ddl)  # idempotent (IF NOT EXISTS): heals a dropped index
            return int(row["last_seq"])
        if row is not None:
            log.warning(
                "projection version changed; rebuilding from the log",
                projection=proj.name,
                old=row["version"],
                new=proj.version,
            )
        for table in reversed(proj.tables):
            await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(table)} CASCADE")
        await conn.execute(proj.ddl)
        await conn.execute(
            "INSERT INTO projection_checkpoints(name, version, last_seq) VALUES ($1, $2, 0) "
            "ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, last_seq = 0",
            proj.name,
            proj.version,
        )
        return 0


class ProjectorRunner:
    """Keeps one projection current in one schema."""

    def __init__(
        self,
        dsn: str,
        js: JetStreamContext,
        projection: Projection,
        *,
        schema: str = "public",
        batch_size: int = 500,
        on_commit: Callable[[str, int], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._js = js
        self.projection = projection
        self.schema = schema
        self._batch = batch_size
        self._on_commit = on_commit
        self.last_seq = 0
        self.caught_up = asyncio.Event()
        self.standby = False
        """True while another replica holds the projection and this one waits to take over."""
        self._advanced = asyncio.Condition()
        self._conn: asyncpg.Connection | None = None
        self._follower: EventFollower | None = None

    async def run(self, stop: asyncio.Event | None = None, *, until_seq: int | None = None) -> None:
        """Apply events until ``stop`` is set (or, with ``until_seq``, until that sequence)."""
        conn = await asyncpg.connect(self._dsn)
        self._conn = conn
        try:
            await init_connection(conn)
            # No fsync wait per commit: rows and checkpoint commit together, so a crash
            # loses both for the last moments and they are applied again from the log.
            await conn.execute("SET synchronous_commit TO off")
            key = _lock_key(self.schema, self.projection.name)
            # Blocks while another replica is the active projector.
            self.standby = True
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            self.standby = False
            self.last_seq = await ensure_projection_schema(conn, self.projection, self.schema)
            await self._follow(conn, stop, until_seq)
        finally:
            if self._follower is not None:
                await self._follower.stop()
            with contextlib.suppress(Exception):
                await conn.close()

    async def _follow(
        self, conn: asyncpg.Connection, stop: asyncio.Event | None, until_seq: int | None
    ) -> None:
        # With until_seq (a rebuild catching up to a live checkpoint, which is always the
        # sequence of an event this projection applied, or 0), stop once it is applied.
        if until_seq is not None and self.last_seq >= until_seq:
            self.caught_up.set()
            return
        follower = EventFollower(
            self._js, self.projection.filter_subjects, start_seq=self.last_seq + 1
        )
        self._follower = follower
        await follower.start()
        if follower.initial_pending == 0:
            self.caught_up.set()
        while stop is None or not stop.is_set():
            raw = await follower.next_batch(self._batch, timeout=0.5)
            if until_seq is not None:
                raw = [r for r in raw if r.seq <= until_seq]
            if raw:
                await self._apply(conn, raw)
                if raw[-1].pending == 0:
                    self.caught_up.set()
            if until_seq is not None and self.last_seq >= until_seq:
                return

    async def _apply(self, conn: asyncpg.Connection, raw: list[RawEvent]) -> None:
        events = decode_batch(raw)
        new_seq = raw[-1].seq
        async with conn.transaction():
            await self.projection.apply(conn, events)
            await self._cas(conn, new_seq)
        await self._committed(new_seq)

    async def _cas(self, conn: asyncpg.Connection, seq: int) -> None:
        done = await conn.fetchval(
            "UPDATE projection_checkpoints SET last_seq = $2 "
            "WHERE name = $1 AND last_seq = $3 RETURNING last_seq",
            self.projection.name,
            seq,
            self.last_seq,
        )
        if done is None:
            raise CheckpointMoved(
                f"checkpoint of {self.schema}.{self.projection.name} moved from {self.last_seq}"
            )
        await conn.execute(
            "SELECT pg_notify($1, $2)",
            NOTIFY_CHANNEL,
            f"{self.schema}.{self.projection.name}:{seq}",
        )

    async def _committed(self, seq: int) -> None:
        self.last_seq = seq
        if self._on_commit is not None:
            self._on_commit(self.projection.name, seq)
        async with self._advanced:
            self._advanced.notify_all()

    async def sync(self, timeout: float) -> bool:
        """Wait (bounded) until every event of our subjects stored before this call is
        applied and committed: what a client has seen (a job that ended), a list shows.

        ``False`` when this runner is not the active projector (another replica is) or
        the bound passes first.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (follower := self._follower) is not None:
            try:
                delivered, pending = await follower.position()
            except Exception:
                return False
            left = deadline - loop.time()
            if left <= 0 or not await self.wait_for(delivered, left):
                return False
            if pending == 0:
                return True
        return False

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait (bounded) until this runner has applied everything up to ``seq``."""
        if self.last_seq >= seq:
            return True
        try:
            async with asyncio.timeout(timeout), self._advanced:
                await self._advanced.wait_for(lambda: self.last_seq >= seq)
        except TimeoutError:
            return False
        return True
