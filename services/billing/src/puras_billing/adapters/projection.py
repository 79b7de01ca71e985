"""The ledger projection: every entry (grants and charges), the balance per project
(grants minus charges: B1, B3, B4), a usage row per billed call (B1, Z2) and each job's
cost rollup (J8). All four are folded from the ledger alone, so that a job's cost is
the sum of its usage rows and a balance is its grants minus its charges, by
construction, in one transaction per batch.
"""

from __future__ import annotations

from typing import Any, ClassVar

import asyncpg

from puras_billing.domain.ledger import LedgerEntry, entry_for
from puras_common.events.subjects import AGG_LEDGER, aggregate_filter
from puras_common.events.types import BilledCall, CreditCharged
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
        # Set-based, a statement per table per batch (not per entry): under a stream of
        # charges the projection keeps up with billing. An entry already applied (a
        # replay, or twice in one batch) is skipped by its id; what the insert reports
        # as new is what moves the balances, the usage rows and the job costs, so each
        # entry counts once. A batch Postgres refuses is applied again event by event
        # by the runner, which quarantines the one at fault.
        batch: dict[str, tuple[LedgerEntry, RecordedEvent]] = {}
        for rec in events:
            entry = entry_for(rec.envelope, rec.event)
            if entry is not None and entry.entry_id not in batch:
                batch[entry.entry_id] = (entry, rec)
        if not batch:
            return
        rows = [(e, r) for e, r in batch.values()]
        inserted = {
            r["entry_id"]
            for r in await conn.fetch(
                "INSERT INTO ledger_entries (entry_id, project_id, kind, micros, note, at, seq) "
                "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], "
                "$5::text[], $6::timestamptz[], $7::bigint[]) "
                "ON CONFLICT (entry_id) DO NOTHING RETURNING entry_id",
                [e.entry_id for e, _ in rows],
                [e.project_id for e, _ in rows],
                [e.kind for e, _ in rows],
                [e.micros for e, _ in rows],
                [e.note for e, _ in rows],
                [e.at for e, _ in rows],
                [r.seq for _, r in rows],
            )
        }
        new = [(e, r) for e, r in rows if e.entry_id in inserted]
        if not new:
            return  # all applied before
        balances: dict[str, list[int]] = {}
        for e, r in new:
            b = balances.setdefault(e.project_id, [0, 0])
            b[0] += e.micros
            b[1] = max(b[1], r.seq)
        await conn.execute(
            "INSERT INTO project_balances (project_id, credit_balance_micros, last_seq) "
            "SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) "
            "ON CONFLICT (project_id) DO UPDATE SET "
            "credit_balance_micros = project_balances.credit_balance_micros "
            "+ EXCLUDED.credit_balance_micros, "
            # GREATEST: an entry applied late (a quarantined event retried) must not
            # move the balance's sequence back.
            "last_seq = GREATEST(project_balances.last_seq, EXCLUDED.last_seq)",
            list(balances),
            [b[0] for b in balances.values()],
            [b[1] for b in balances.values()],
        )
        charged = [r for _, r in new if isinstance(r.event, CreditCharged)]
        if charged:
            await self._usage(conn, charged)

    async def _usage(self, conn: asyncpg.Connection, charged: list[RecordedEvent]) -> None:
        """The new charges' usage rows and their jobs' rollups (each charge once)."""
        usage = [usage_row(r.envelope.project_id, r.envelope.at, r.seq, _call(r)) for r in charged]
        columns = list(zip(*usage, strict=True))
        await conn.execute(
            f"INSERT INTO usage_rows ({USAGE_ROW_COLUMNS}) "  # noqa: S608 (our own columns)
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
            "$6::integer[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], "
            "$11::bigint[], $12::bigint[], $13::bigint[], $14::text[], $15::integer[], "
            "$16::timestamptz[], $17::bigint[])",
            *(list(c) for c in columns),
        )
        jobs: dict[str, list[Any]] = {}
        for r in charged:
            c = _call(r)
            j = jobs.setdefault(c.job_id, [r.envelope.project_id, 0, 0])
            j[1] += c.billed_micros
            j[2] += 1
        await conn.execute(
            "INSERT INTO job_costs (job_id, project_id, cost_micros, calls) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::integer[]) "
            "ON CONFLICT (job_id) DO UPDATE SET "
            "cost_micros = job_costs.cost_micros + EXCLUDED.cost_micros, "
            "calls = job_costs.calls + EXCLUDED.calls",
            list(jobs),
            [j[0] for j in jobs.values()],
            [j[1] for j in jobs.values()],
            [j[2] for j in jobs.values()],
        )


def _call(rec: RecordedEvent) -> BilledCall:
    assert isinstance(rec.event, CreditCharged)
    return rec.event.call
