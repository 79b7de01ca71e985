"""Shared by the golden-log test and the recorder: load logs, fold them, dump tables."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from puras_common.events import decode_envelope, decode_event
from puras_common.events.subjects import event_aggregate
from puras_common.projection.base import Projection, RecordedEvent
from puras_common.views.deployments import DeploymentsView
from puras_common.views.jobs import apply_job_event, job_out
from puras_common.views.keys import KeysView
from puras_common.views.ledger import BalancesView

HERE = Path(__file__).parent


class LogLine(msgspec.Struct, frozen=True):
    seq: int
    subject: str
    data: msgspec.Raw


def load(path: Path) -> list[RecordedEvent]:
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        ll = msgspec.json.decode(line, type=LogLine)
        env = decode_envelope(bytes(ll.data))
        out.append(
            RecordedEvent(seq=ll.seq, subject=ll.subject, envelope=env, event=decode_event(env))
        )
    return out


def raw_lines(path: Path) -> list[LogLine]:
    return [
        msgspec.json.decode(line, type=LogLine)
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def fold_views(events: list[RecordedEvent]) -> dict[str, Any]:
    """Everything the pure folds derive from the log, as plain JSON."""
    deployments, keys, balances = DeploymentsView(), KeysView(), BalancesView()
    jobs: dict[str, Any] = {}
    for rec in events:
        agg = event_aggregate(rec.subject)
        if agg == "deployments":
            deployments.apply(rec)
        elif agg in ("project", "key"):
            keys.apply(rec)
        elif agg == "ledger":
            balances.apply(rec)
        elif agg == "job":
            jobs[rec.envelope.aggregate_id] = apply_job_event(
                jobs.get(rec.envelope.aggregate_id), rec.envelope, rec.event
            )
    active = {pid: pd.active_id for pid, pd in sorted(deployments.projects.items())}
    skills = {
        pid: sorted(pd.active.skills) if pd.active else []
        for pid, pd in sorted(deployments.projects.items())
    }
    state: dict[str, Any] = msgspec.to_builtins(
        {
            "projects": dict(sorted(keys.projects.items())),
            "keys": {p: [k.project_id, k.revoked] for p, k in sorted(keys.keys.items())},
            "balances": dict(sorted(balances.balances.items())),
            "active_deployments": active,
            "active_skills": skills,
            "jobs": {jid: job_out(j) for jid, j in sorted(jobs.items()) if j is not None},
        }
    )
    return state


async def dump_tables(conn: asyncpg.Connection, projections: list[Projection]) -> dict[str, Any]:
    """Every projection table as sorted rows of plain JSON."""
    out: dict[str, Any] = defaultdict(dict)
    for proj in projections:
        for table in proj.tables:
            order = proj.compare_order.get(table, "1")
            rows = await conn.fetch(f"SELECT * FROM {table} ORDER BY {order}")  # noqa: S608
            out[proj.name][table] = msgspec.to_builtins([dict(r) for r in rows])
    return dict(out)
