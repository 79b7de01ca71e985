"""The audit's Postgres side: the expected tables in a scratch schema, and their
row-for-row comparison with the live ones.

The scratch schema is one of its own per audit (``audit_<random>``), dropped at the end,
so two audits never collide: the services' roles may create schemas (the projection
library does) but not temporary tables (``TEMP`` is revoked from ``PUBLIC``), and the
audit needs no right the gateway does not have already. Rows go in by ``COPY`` (the
fastest way into Postgres), and the comparison is the rebuild's
(:func:`~puras_common.projection.rebuild.diff_relations`), inside one REPEATABLE READ
snapshot that also reads how far the live projections are.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import asyncpg

from puras_common.audit.fold import ExpectedTables
from puras_common.db import quote_ident
from puras_common.projection.rebuild import TableDiff, diff_relations

__all__ = ["LEDGER_TABLES", "LivePosition", "ScratchTables"]

LEDGER_TABLES: dict[str, str] = {
    "ledger_entries": "entry_id",
    "project_balances": "project_id",
    "usage_rows": "usage_id",
    "job_costs": "job_id",
}
"""Billing's ledger projection's tables, and the order their differences are shown in."""
_JOBS = "jobs.cost_micros"
_JOBS_COLUMNS = "id, project_id, cost_micros"


@dataclass(frozen=True)
class LivePosition:
    """How far the live projections are, as their own rows say (every role that may
    read a table can read these; the checkpoints table shows each role only its own)."""

    ledger_seq: int
    """The last grant or charge in ``project_balances``."""
    jobs_seq: int
    """The last event applied to a row of the gateway's ``jobs``."""


class ScratchTables:
    """The expected tables of one audit, in a schema of its own."""

    def __init__(self, conn: asyncpg.Connection, *, live_schema: str = "public") -> None:
        self._conn = conn
        self._live = quote_ident(live_schema)
        self.schema = f"audit_{secrets.token_hex(6)}"
        self._scratch = quote_ident(self.schema)

    def _table(self, table: str) -> str:
        return f"{self._scratch}.{quote_ident(table)}"

    async def create(self) -> None:
        await self._conn.execute(f"CREATE SCHEMA {self._scratch}")
        for table in LEDGER_TABLES:
            await self._conn.execute(
                f"CREATE TABLE {self._table(table)} (LIKE {self._live}.{quote_ident(table)})"
            )
        await self._conn.execute(
            f"CREATE TABLE {self._table('jobs')} (id text, project_id text, cost_micros bigint)"
        )

    async def drop(self) -> None:
        await self._conn.execute(f"DROP SCHEMA IF EXISTS {self._scratch} CASCADE")

    async def write(self, expected: ExpectedTables) -> None:
        rows = {
            "ledger_entries": expected.ledger_entries,
            "project_balances": expected.project_balances,
            "usage_rows": expected.usage_rows,
            "job_costs": expected.job_costs,
            "jobs": expected.job_cost_micros,
        }
        async with self._conn.transaction():
            for table, records in rows.items():
                await self._conn.execute(f"TRUNCATE {self._table(table)}")
                await self._conn.copy_records_to_table(
                    table, records=records, schema_name=self.schema
                )

    async def position(self) -> LivePosition:
        row = await self._conn.fetchrow(
            f"SELECT (SELECT coalesce(max(last_seq), 0) FROM {self._live}.project_balances), "  # noqa: S608
            f"(SELECT coalesce(max(last_seq), 0) FROM {self._live}.jobs)"
        )
        assert row is not None
        return LivePosition(ledger_seq=int(row[0]), jobs_seq=int(row[1]))

    async def compare(self, at: LivePosition) -> list[TableDiff] | None:
        """Every table's differences, or ``None`` if the live projections are no longer
        at ``at`` (they moved on: fold more and try again)."""
        sources = [
            (table, f"{self._live}.{quote_ident(table)}", self._table(table), order)
            for table, order in LEDGER_TABLES.items()
        ]
        sources.append(
            (
                _JOBS,
                f"(SELECT {_JOBS_COLUMNS} FROM {self._live}.jobs) lj",  # noqa: S608
                f"(SELECT {_JOBS_COLUMNS} FROM {self._table('jobs')}) sj",  # noqa: S608
                "id",
            )
        )
        async with self._conn.transaction(isolation="repeatable_read", readonly=True):
            if await self.position() != at:
                return None
            return await diff_relations(self._conn, sources, samples=None)
