"""When each API key was last used, in Postgres."""

from __future__ import annotations

from datetime import datetime

import asyncpg

__all__ = ["KeyLastUsedWriter"]


class KeyLastUsedWriter:
    """Writes ``last_used_at`` per key: operational data outside the projections (not an
    event), which the key listing joins in.

    Written at most once a minute per key, off the request path.
    """

    DDL = """
    CREATE TABLE IF NOT EXISTS api_key_usage (
        prefix text PRIMARY KEY,
        last_used_at timestamptz NOT NULL
    )
    """

    def __init__(self, pool: asyncpg.Pool, *, every_s: float = 60.0) -> None:
        self._pool = pool
        self._every = every_s
        self._last_written: dict[str, float] = {}

    async def setup(self) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            # Workers and replicas start together; concurrent CREATE ... IF NOT EXISTS
            # can collide (a duplicate pg_type row): one at a time.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('puras:api_key_usage'))")
            await conn.execute(self.DDL)

    def due(self, prefix: str, now_mono: float) -> bool:
        last = self._last_written.get(prefix)
        if last is not None and now_mono - last < self._every:
            return False
        self._last_written[prefix] = now_mono
        return True

    async def record(self, prefix: str, at: datetime) -> None:
        await self._pool.execute(
            "INSERT INTO api_key_usage (prefix, last_used_at) VALUES ($1, $2) "
            "ON CONFLICT (prefix) DO UPDATE SET last_used_at = GREATEST("
            "api_key_usage.last_used_at, EXCLUDED.last_used_at)",
            prefix,
            at,
        )
