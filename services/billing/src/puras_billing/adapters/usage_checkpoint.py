"""Where billing's charging of the job subjects has reached, in billing's database.

One row per reader: ``last_seq``, the log position up to which every usage event is
charged, and ``held``, the usage events at or before it that could not be priced yet
(retried until a billing can). Only the replica holding the row's advisory lock reads
the job subjects and writes the row; the others wait to take over.

Commits do not wait for the disk (``synchronous_commit off``): a Postgres crash may
lose the last moments of progress, which only means those job events are read again,
and charging is safe to repeat.
"""

from __future__ import annotations

import contextlib
import hashlib

import asyncpg

from puras_common.db import init_connection
from puras_common.logging import get_logger

__all__ = ["CHECKPOINT_DDL", "PgUsageCheckpoint", "UsagePosition"]

log = get_logger(__name__)

CHECKPOINT_DDL = """
CREATE TABLE IF NOT EXISTS usage_checkpoint (
    name text PRIMARY KEY,
    last_seq bigint NOT NULL,
    held bigint[] NOT NULL DEFAULT '{}'
)
"""

UsagePosition = tuple[int, list[int]]
"""``(last_seq, held)``: charged up to ``last_seq`` except the ``held`` sequences."""


def _lock_key(name: str) -> int:
    digest = hashlib.sha256(f"puras-billing-usage:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgUsageCheckpoint:
    """The checkpoint row of ``name`` and the lock that makes its holder the one reader."""

    def __init__(self, conn: asyncpg.Connection, name: str) -> None:
        self._conn = conn
        self.name = name

    @classmethod
    async def connect(cls, dsn: str, name: str) -> PgUsageCheckpoint:
        conn = await asyncpg.connect(dsn)
        try:
            await init_connection(conn)
            await conn.execute("SET synchronous_commit TO off")
            await conn.execute(CHECKPOINT_DDL)
        except BaseException:
            with contextlib.suppress(Exception):
                await conn.close()
            raise
        return cls(conn, name)

    async def try_lock(self) -> bool:
        """Become the one reader (a session lock: freed when this connection ends)."""
        got = await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", _lock_key(self.name))
        return bool(got)

    async def load(self) -> UsagePosition | None:
        row = await self._conn.fetchrow(
            "SELECT last_seq, held FROM usage_checkpoint WHERE name = $1", self.name
        )
        if row is None:
            return None
        return int(row["last_seq"]), [int(s) for s in row["held"]]

    async def save(self, last_seq: int, held: list[int]) -> None:
        await self._conn.execute(
            "INSERT INTO usage_checkpoint(name, last_seq, held) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET last_seq = EXCLUDED.last_seq, held = EXCLUDED.held",
            self.name,
            last_seq,
            held,
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._conn.close()
