"""The ledger projection: every entry (grants and charges), and the balance per project,
grants minus charges (B1, B3, B4)."""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from puras_billing.domain.ledger import entry_for
from puras_common.events.subjects import AGG_LEDGER, aggregate_filter
from puras_common.projection.base import Projection, RecordedEvent

__all__ = ["LedgerProjection"]


class LedgerProjection(Projection):
    name: ClassVar[str] = "ledger"
    # 2: charges became entries (negative micros). A replica still on version 1 skipped
    # them as unknown; the rebuild applies them.
    version: ClassVar[int] = 2
    filter_subjects: ClassVar[list[str]] = [aggregate_filter(AGG_LEDGER)]
    tables: ClassVar[list[str]] = ["ledger_entries", "project_balances"]
    compare_order: ClassVar[dict[str, str]] = {
        "ledger_entries": "entry_id",
        "project_balances": "project_id",
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
