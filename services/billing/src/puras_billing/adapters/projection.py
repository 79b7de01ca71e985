"""The ledger projection: every entry (grants and charges), the balance per project
(grants minus charges: B1, B3, B4), a usage row per billed call (B1, Z2) and each job's
cost rollup (J8). All four are folded from the ledger alone, so that a job's cost is
the sum of its usage rows and a balance is its grants minus its charges, by
construction, in one transaction per batch."""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from puras_billing.domain.ledger import entry_for
from puras_common.events.subjects import AGG_LEDGER, aggregate_filter
from puras_common.events.types import CreditCharged
from puras_common.ledger import USAGE_ROW_COLUMNS, usage_row
from puras_common.projection.base import Projection, RecordedEvent

__all__ = ["LedgerProjection"]


class LedgerProjection(Projection):
    name: ClassVar[str] = "ledger"
    # 2: charges became entries (negative micros). A replica still on version 1 skipped
    # them as unknown; the rebuild applies them.
    # 3: usage rows and job costs.
    version: ClassVar[int] = 3
    filter_subjects: ClassVar[list[str]] = [aggregate_filter(AGG_LEDGER)]
    tables: ClassVar[list[str]] = ["ledger_entries", "project_balances", "usage_rows", "job_costs"]
    compare_order: ClassVar[dict[str, str]] = {
        "ledger_entries": "entry_id",
        "project_balances": "project_id",
        "usage_rows": "usage_id",
        "job_costs": "job_id",
    }
    ddl: ClassVar[str] = """
    CREATE TABLE IF NOT EXISTS ledger_entries (
        entry_id text PRIMARY KEY,
        project_id text NOT NULL,
        kind text NOT NULL,
        micros bigint NOT NULL,
        note text NOT NULL,
        at timestamptz NOT NULL,
        seq bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS ledger_by_project ON ledger_entries (project_id, seq);
    CREATE TABLE IF NOT EXISTS project_balances (
        project_id text PRIMARY KEY,
        credit_balance_micros bigint NOT NULL,
        last_seq bigint NOT NULL
    );
    CREATE TABLE IF NOT EXISTS usage_rows (
        usage_id text PRIMARY KEY,
        project_id text NOT NULL,
        job_id text NOT NULL,
        skill text NOT NULL,
        key_prefix text,
        step integer NOT NULL,
        provider text NOT NULL,
        model text NOT NULL,
        input_tokens bigint NOT NULL,
        output_tokens bigint NOT NULL,
        cache_read_tokens bigint NOT NULL,
        cache_write_tokens bigint NOT NULL,
        billed_micros bigint NOT NULL,
        registry_version text NOT NULL,
        margin_pct integer NOT NULL,
        at timestamptz NOT NULL,
        seq bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS usage_by_project_at ON usage_rows (project_id, at);
    CREATE TABLE IF NOT EXISTS job_costs (
        job_id text PRIMARY KEY,
        project_id text NOT NULL,
        cost_micros bigint NOT NULL,
        calls integer NOT NULL
    );
    """

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        for rec in events:
            entry = entry_for(rec.envelope, rec.event)
            if entry is None:
                continue
            inserted = await conn.fetchval(
                "INSERT INTO ledger_entries (entry_id, project_id, kind, micros, note, at, seq) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (entry_id) DO NOTHING "
                "RETURNING 1",
                entry.entry_id,
                entry.project_id,
                entry.kind,
                entry.micros,
                entry.note,
                entry.at,
                rec.seq,
            )
            if inserted is None:
                continue  # already applied
            await conn.execute(
                "INSERT INTO project_balances (project_id, credit_balance_micros, last_seq) "
                "VALUES ($1, $2, $3) ON CONFLICT (project_id) DO UPDATE SET "
                "credit_balance_micros = project_balances.credit_balance_micros "
                "+ EXCLUDED.credit_balance_micros, "
                # GREATEST: an entry applied late (a quarantined event retried) must not
                # move the balance's sequence back.
                "last_seq = GREATEST(project_balances.last_seq, EXCLUDED.last_seq)",
                entry.project_id,
                entry.micros,
                rec.seq,
            )
            if isinstance(rec.event, CreditCharged):
                await self._usage(conn, rec)

    async def _usage(self, conn: asyncpg.Connection, rec: RecordedEvent) -> None:
        """The charge's usage row and its job's rollup (the entry was new: once)."""
        assert isinstance(rec.event, CreditCharged)
        c = rec.event.call
        pid = rec.envelope.project_id
        await conn.execute(
            f"INSERT INTO usage_rows ({USAGE_ROW_COLUMNS}) "  # noqa: S608 (our own columns)
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            *usage_row(pid, rec.envelope.at, rec.seq, c),
        )
        await conn.execute(
            "INSERT INTO job_costs (job_id, project_id, cost_micros, calls) "
            "VALUES ($1, $2, $3, 1) ON CONFLICT (job_id) DO UPDATE SET "
            "cost_micros = job_costs.cost_micros + EXCLUDED.cost_micros, "
            "calls = job_costs.calls + 1",
            c.job_id,
            pid,
            c.billed_micros,
        )
