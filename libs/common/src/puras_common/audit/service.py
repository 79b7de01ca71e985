"""The billing audit (SPEC Z3): replay the log, price every usage again, diff the live
tables. The CLI (``puras admin audit``) and the gateway (``POST /v1/admin/audit``) run
this same function.

1. Fold the whole log from sequence 1 (:class:`~puras_common.audit.log.LogReader` into
   :class:`~puras_common.audit.fold.AuditFold`).
2. Wait, bounded by ``settle_s``, until the live projections show exactly the log's
   last grant or charge and the last event of a job, and billing has charged every
   usage stored before the audit began; keep folding what the log gains meanwhile.
3. Copy the expected tables into a scratch schema of the audit's own and compare them with the
   live ones in one REPEATABLE READ snapshot that checks again that the live
   projections are where the fold is (else fold on and retry).

What is still pending at the deadline (usage stored before the audit with no charge, a
charge with no ``job.cost``) is reported as a difference; what was stored after the
audit began is in flight, counted, and not judged. Projections that never reach the log
end the audit with :class:`AuditIncomplete` (neither clean nor a difference: the
comparison would be meaningless).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from nats.js import JetStreamContext

from puras_common.audit.fold import AuditFold, Difference
from puras_common.audit.log import LogReader
from puras_common.audit.store import LivePosition, ScratchTables
from puras_common.pricing import Registry, load_registry
from puras_common.projection.rebuild import TableDiff
from puras_common.projection.runner import NOTIFY_CHANNEL

__all__ = ["AuditIncomplete", "AuditReport", "run_audit"]

_POLL_S = 0.25
"""Longest wait between two looks at the live projections when no commit is heard."""


class AuditIncomplete(RuntimeError):
    """The live projections did not reach the log in time: nothing could be compared."""


@dataclass(frozen=True)
class AuditReport:
    differences: list[Difference]
    events: int
    """Ledger and job events folded."""
    first_seq: int
    last_seq: int
    read_s: float
    """Time to fold the log once, from sequence 1 (what events/s is measured on)."""
    seconds: float
    """The whole audit, settling and comparing included."""
    in_flight: int
    """Usage or charges stored after the audit began, not yet billed: not judged."""
    tables: list[TableDiff] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.differences

    @property
    def events_per_s(self) -> int:
        return int(self.events / self.read_s) if self.read_s > 0 else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "differences": [d.as_dict() for d in self.differences],
            "events": self.events,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "events_per_s": self.events_per_s,
            "read_s": round(self.read_s, 3),
            "seconds": round(self.seconds, 3),
            "in_flight": self.in_flight,
            "tables": [
                {
                    "table": t.table,
                    "live_rows": t.live_rows,
                    "expected_rows": t.rebuilt_rows,
                    "only_live": t.only_live,
                    "only_expected": t.only_rebuilt,
                }
                for t in self.tables
            ],
        }

    def render(self) -> str:
        lines = [
            f"audit: {self.events} ledger and job events, sequence {self.first_seq} to "
            f"{self.last_seq}, read in {self.read_s:.2f} s ({self.events_per_s} events/s); "
            f"{self.seconds:.2f} s in all"
        ]
        for t in self.tables:
            verdict = "identical" if t.equal else "DIFFERENT"
            lines.append(
                f"  {t.table}: {verdict} ({t.live_rows} live rows, {t.rebuilt_rows} from the "
                f"log; only live {t.only_live}, only in the log {t.only_rebuilt})"
            )
        if self.in_flight:
            lines.append(f"  {self.in_flight} usage events or charges in flight (not judged)")
        for d in self.differences:
            where = f"seq {d.seq}: " if d.seq is not None else ""
            lines.append(f"DIFFERENCE {d.kind}: {where}{d.detail}")
        lines.append(
            "result: CLEAN" if self.clean else f"result: {len(self.differences)} DIFFERENCES"
        )
        return "\n".join(lines)


def _table_differences(tables: list[TableDiff]) -> list[Difference]:
    # Every differing row (samples=None), as "only live: {...}" / "only rebuilt: {...}".
    return [
        Difference("table_row", f"{t.table}: {s.replace('only rebuilt', 'only in the log')}")
        for t in tables
        for s in t.samples
    ]


async def run_audit(
    js: JetStreamContext,
    conn: asyncpg.Connection,
    *,
    registry: Callable[[str], Registry] = load_registry,
    settle_s: float = 30.0,
    live_schema: str = "public",
) -> AuditReport:
    """Audit the live tables ``conn`` reads (it needs SELECT on billing's ledger tables
    and the gateway's ``jobs``, and CREATE on the database for its scratch schema)
    against the log ``js`` reads."""
    started = time.monotonic()
    fold = AuditFold(registry)
    reader = LogReader(js, fold)
    scratch = ScratchTables(conn, live_schema=live_schema)
    changed = asyncio.Event()

    def heard(*_: object) -> None:
        changed.set()

    await conn.add_listener(NOTIFY_CHANNEL, heard)
    try:
        await scratch.create()
        horizon = await reader.catch_up()
        read_s = time.monotonic() - started
        deadline = time.monotonic() + settle_s
        while True:
            # One synchronous look at the fold: the reader folds more at every await.
            want = LivePosition(fold.last_entry_seq, fold.last_job_row_seq)
            late = time.monotonic() > deadline
            settled = late or not fold.pending(horizon)
            if settled:
                expected = fold.expected()
                found = fold.differences(pending_upto=horizon)
                in_flight = len(fold.pending()) - len(fold.pending(horizon))
            live = await scratch.position()
            if settled and live == want:
                await scratch.write(expected)
                tables = await scratch.compare(want)
                if tables is not None:
                    return AuditReport(
                        differences=found + _table_differences(tables),
                        events=fold.events,
                        first_seq=fold.first_seq,
                        last_seq=fold.last_seq,
                        read_s=read_s,
                        seconds=time.monotonic() - started,
                        in_flight=in_flight,
                        tables=tables,
                    )
            elif late and (live.ledger_seq > want.ledger_seq or live.jobs_seq > want.jobs_seq):
                raise AuditIncomplete(
                    f"the log kept growing for {settle_s} s after the replay, and the live "
                    "projections with it, so no snapshot matched what was folded; retry when "
                    "the system is quieter, or with a longer settle"
                )
            elif late:
                raise AuditIncomplete(
                    f"the live projections did not reach the log in {settle_s} s: the ledger "
                    f"shows entries up to sequence {live.ledger_seq} (the log's last is "
                    f"{want.ledger_seq}), the jobs view up to {live.jobs_seq} (the log's last "
                    f"is {want.jobs_seq}); is billing's or the gateway's projector running?"
                )
            changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_POLL_S):
                    await changed.wait()
            await reader.catch_up()
    finally:
        with contextlib.suppress(Exception):
            await conn.remove_listener(NOTIFY_CHANNEL, heard)
        await reader.close()
        await scratch.drop()
