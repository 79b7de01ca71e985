"""Rebuild a projection from sequence 1 and prove it equals the live tables.

The rebuild replays the log into a scratch schema up to the live checkpoint, then
compares every table row for row (``EXCEPT ALL`` both ways) inside one REPEATABLE READ
transaction that also reads the live checkpoint, so a live projector moving on while we
compare cannot produce a false difference. This is also how an operator audits costs:
the ledger rebuilt from the log must equal the ledger the service keeps.

Quarantined events are part of the comparison: the replay quarantines, in the scratch
schema, whatever the current code cannot apply, and the projection's entries of
``projection_quarantine`` are compared on what derives from the log (sequence, subject,
event type and id), not on what is operational (when first seen, the reason's wording,
an operator's resolution). A resolved entry still counts: the event is still not in the
tables. So an event quarantined by an older build that the current one applies shows
as a difference (retry it), and so does one the live projector applied that the
current code refuses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
from nats.js import JetStreamContext

from puras_common.db import quote_ident
from puras_common.projection.base import Projection
from puras_common.projection.quarantine import QUARANTINE_TABLE, ensure_quarantine_table
from puras_common.projection.runner import ProjectorRunner

__all__ = ["RebuildReport", "TableDiff", "diff_relations", "rebuild_and_compare"]


@dataclass(frozen=True)
class TableDiff:
    table: str
    live_rows: int
    rebuilt_rows: int
    only_live: int
    only_rebuilt: int
    samples: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return self.only_live == 0 and self.only_rebuilt == 0


@dataclass(frozen=True)
class RebuildReport:
    projection: str
    seq: int
    tables: list[TableDiff]
    scratch_schema: str

    @property
    def equal(self) -> bool:
        return all(t.equal for t in self.tables)

    def render(self) -> str:
        lines = [f"projection {self.projection}: rebuilt from sequence 1 to {self.seq}"]
        for t in self.tables:
            verdict = "identical" if t.equal else "DIFFERENT"
            lines.append(
                f"  {t.table}: {verdict} (live {t.live_rows} rows, rebuilt {t.rebuilt_rows}; "
                f"only live {t.only_live}, only rebuilt {t.only_rebuilt})"
            )
            lines.extend(f"    {s}" for s in t.samples)
        lines.append("result: " + ("EQUAL" if self.equal else "NOT EQUAL"))
        return "\n".join(lines)


async def _live_seq(conn: asyncpg.Connection, schema: str, name: str) -> int:
    try:
        v = await conn.fetchval(
            f"SELECT last_seq FROM {quote_ident(schema)}.projection_checkpoints "  # noqa: S608
            "WHERE name = $1",
            name,
        )
    except asyncpg.UndefinedTableError:
        v = None
    if v is None:
        raise LookupError(f"projection {name!r} has no checkpoint in schema {schema!r}")
    return int(v)


_QUARANTINE_COLS = "projection, stream_seq, subject, event_type, event_id"


async def diff_relations(
    conn: asyncpg.Connection,
    sources: list[tuple[str, str, str, str]],
    *,
    samples: int | None = 3,
) -> list[TableDiff]:
    """Row-for-row differences (``EXCEPT ALL`` both ways) of each ``(name, live relation,
    rebuilt relation, order by)``; ``samples`` rows of each side shown (``None``: all).
    The relations are SQL (a qualified table, or a subquery with an alias)."""
    out = []
    for table, a, b, order in sources:
        live_rows = await conn.fetchval(f"SELECT count(*) FROM {a}")  # noqa: S608
        rebuilt_rows = await conn.fetchval(f"SELECT count(*) FROM {b}")  # noqa: S608
        only_live = await conn.fetch(
            f"SELECT * FROM (SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}) d "  # noqa: S608
            f"ORDER BY {order}"
        )
        only_rebuilt = await conn.fetch(
            f"SELECT * FROM (SELECT * FROM {b} EXCEPT ALL SELECT * FROM {a}) d "  # noqa: S608
            f"ORDER BY {order}"
        )
        shown = only_live[:samples], only_rebuilt[:samples]
        out.append(
            TableDiff(
                table=table,
                live_rows=int(live_rows),
                rebuilt_rows=int(rebuilt_rows),
                only_live=len(only_live),
                only_rebuilt=len(only_rebuilt),
                samples=[f"only live: {dict(r)}" for r in shown[0]]
                + [f"only rebuilt: {dict(r)}" for r in shown[1]],
            )
        )
    return out


async def _compare(
    conn: asyncpg.Connection, proj: Projection, live: str, scratch: str
) -> list[TableDiff]:
    name = proj.name.replace("'", "''")
    sources = [
        (
            table,
            f"{quote_ident(live)}.{quote_ident(table)}",
            f"{quote_ident(scratch)}.{quote_ident(table)}",
            proj.compare_order.get(table, "1"),
        )
        for table in proj.tables
    ]
    # Only this projection's entries, only their columns that derive from the log.
    sources.append(
        (
            QUARANTINE_TABLE,
            f"(SELECT {_QUARANTINE_COLS} FROM {quote_ident(live)}.{QUARANTINE_TABLE} "  # noqa: S608
            f"WHERE projection = '{name}') lq",
            f"(SELECT {_QUARANTINE_COLS} FROM {quote_ident(scratch)}.{QUARANTINE_TABLE} "  # noqa: S608
            f"WHERE projection = '{name}') sq",
            "stream_seq",
        )
    )
    return await diff_relations(conn, sources)


async def rebuild_and_compare(
    dsn: str,
    js: JetStreamContext,
    projection: Projection,
    *,
    live_schema: str = "public",
    scratch_schema: str | None = None,
    keep: bool = False,
    max_rounds: int = 20,
) -> RebuildReport:
    """Replay ``projection`` into a scratch schema and diff it against the live one."""
    scratch = scratch_schema or f"rebuild_{projection.name}"
    conn = await asyncpg.connect(dsn)
    try:
        # A live schema written by an older build has no quarantine table yet: compare
        # against an empty one.
        await conn.execute(f"SET search_path TO {quote_ident(live_schema)}")
        await ensure_quarantine_table(conn, live_schema)
        await conn.execute("RESET search_path")
        await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(scratch)} CASCADE")
        runner = ProjectorRunner(dsn, js, projection, schema=scratch)
        for _ in range(max_rounds):
            target = await _live_seq(conn, live_schema, projection.name)
            await runner.run(until_seq=target)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                now = await _live_seq(conn, live_schema, projection.name)
                if now != runner.last_seq:
                    continue  # the live projection moved on; catch up and compare again
                tables = await _compare(conn, projection, live_schema, scratch)
            return RebuildReport(
                projection=projection.name, seq=now, tables=tables, scratch_schema=scratch
            )
        raise TimeoutError(
            f"the live {projection.name} projection kept moving; retry when the system is quieter"
        )
    finally:
        if not keep:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(scratch)} CASCADE")
        await conn.close()
