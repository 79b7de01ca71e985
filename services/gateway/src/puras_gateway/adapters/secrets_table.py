"""Project secrets (X1) in Postgres: their projection of the log, and its queries.

One row per ``(project, name)``: the last ``secret.set`` of the name, unless a
``secret.deleted`` came after it. The row holds the ciphertext and the id of the master
key that sealed it, never the value: listing needs the names, a key rotation needs to
know what an old key sealed. Rows derive from events only, so a rebuild equals the live
table.
"""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from puras_common.events.subjects import AGG_SECRET, aggregate_filter
from puras_common.events.types import SecretDeleted, SecretSet
from puras_common.projection.base import Projection, RecordedEvent
from puras_gateway.app.ports import StoredSecret

__all__ = ["SecretsProjection", "SecretsTable"]


class SecretsProjection(Projection):
    """``secrets``: each project's secrets by name, sealed."""

    name: ClassVar[str] = "secrets"
    version: ClassVar[int] = 1
    filter_subjects: ClassVar[list[str]] = [aggregate_filter(AGG_SECRET)]
    tables: ClassVar[list[str]] = ["secrets"]
    compare_order: ClassVar[dict[str, str]] = {"secrets": "project_id, name"}
    ddl: ClassVar[str] = """
    CREATE TABLE IF NOT EXISTS secrets (
        project_id text NOT NULL,
        name text NOT NULL,
        key_id text NOT NULL,
        ciphertext text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        last_seq bigint NOT NULL,
        PRIMARY KEY (project_id, name)
    );
    CREATE INDEX IF NOT EXISTS secrets_by_key ON secrets (key_id);
    """

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        for rec in events:
            ev, pid, at = rec.event, rec.envelope.project_id, rec.envelope.at
            if isinstance(ev, SecretSet):
                # A re-seal by a rotation is the same value: its updated_at stays. The
                # sequence guard makes a replayed event change nothing.
                await conn.execute(
                    """
                    INSERT INTO secrets (project_id, name, key_id, ciphertext, created_at,
                        updated_at, last_seq)
                    VALUES ($1, $2, $3, $4, $5, $5, $6)
                    ON CONFLICT (project_id, name) DO UPDATE SET
                        key_id = EXCLUDED.key_id,
                        ciphertext = EXCLUDED.ciphertext,
                        updated_at = CASE WHEN $7::boolean THEN secrets.updated_at
                                          ELSE EXCLUDED.updated_at END,
                        last_seq = EXCLUDED.last_seq
                    WHERE secrets.last_seq < EXCLUDED.last_seq
                    """,
                    pid,
                    ev.name,
                    ev.key_id,
                    ev.ciphertext,
                    at,
                    rec.seq,
                    ev.rotated,
                )
            elif isinstance(ev, SecretDeleted):
                await conn.execute(
                    "DELETE FROM secrets WHERE project_id = $1 AND name = $2 AND last_seq < $3",
                    pid,
                    ev.name,
                    rec.seq,
                )


_COLS = "project_id, name, key_id, ciphertext, created_at, updated_at, last_seq"


def _row(r: asyncpg.Record) -> StoredSecret:
    return StoredSecret(
        project_id=r["project_id"],
        name=r["name"],
        key_id=r["key_id"],
        ciphertext=r["ciphertext"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        last_seq=int(r["last_seq"]),
    )


class SecretsTable:
    """Queries on ``secrets``; every one but :meth:`sealed_elsewhere` is scoped by project."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def of_project(self, project_id: str) -> list[StoredSecret]:
        rows = await self._pool.fetch(
            f"SELECT {_COLS} FROM secrets WHERE project_id = $1 ORDER BY name",  # noqa: S608
            project_id,
        )
        return [_row(r) for r in rows]

    async def get(self, project_id: str, name: str) -> StoredSecret | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLS} FROM secrets WHERE project_id = $1 AND name = $2",  # noqa: S608
            project_id,
            name,
        )
        return None if row is None else _row(row)

    async def sealed_elsewhere(self, key_id: str) -> list[StoredSecret]:
        """Every secret of every project not sealed under ``key_id`` (for a rotation)."""
        rows = await self._pool.fetch(
            f"SELECT {_COLS} FROM secrets WHERE key_id <> $1 ORDER BY project_id, name",  # noqa: S608
            key_id,
        )
        return [_row(r) for r in rows]
