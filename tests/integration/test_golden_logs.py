"""Old logs must keep replaying: decoders, pure views and projections (CONVENTIONS 4)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from puras_billing.bootstrap import BILLING_PROJECTIONS
from puras_common.bus import connect, ensure_streams
from puras_common.db import init_connection
from puras_common.projection import ProjectorRunner
from puras_gateway.adapters.projections import GATEWAY_PROJECTIONS

GOLDEN = Path(__file__).parent.parent / "golden"
sys.path.insert(0, str(GOLDEN))

from golden import dump_tables, fold_views, load, raw_lines  # noqa: E402

LOGS = sorted(GOLDEN.glob("*.jsonl"))
PROJECTIONS = [*GATEWAY_PROJECTIONS, *BILLING_PROJECTIONS]


async def replay_into(log: Path, nats_url: str, dsn: str) -> dict[str, Any]:
    """Publish the log into an empty event stream, run every projection, dump the result."""
    bus = await connect(nats_url, name="golden")
    try:
        await ensure_streams(bus.js)
        for line in raw_lines(log):
            pub = await bus.publish_raw(line.subject, bytes(line.data))
            assert pub.seq == line.seq, "golden logs are contiguous from sequence 1"
        projections = [cls() for cls in PROJECTIONS]
        last = raw_lines(log)[-1].seq
        for proj in projections:
            runner = ProjectorRunner(dsn, bus.js, proj)
            await runner.run(until_seq=_last_matching(log, proj.filter_subjects, last))
        conn = await asyncpg.connect(dsn)
        try:
            await init_connection(conn)
            tables = await dump_tables(conn, projections)
        finally:
            await conn.close()
    finally:
        await bus.close()
    return {"views": fold_views(load(log)), "tables": tables}


def _last_matching(log: Path, filters: list[str], _last: int) -> int:
    def matches(subject: str, pattern: str) -> bool:
        s, p = subject.split("."), pattern.split(".")
        return len(s) == len(p) and all(b in ("*", a) for a, b in zip(s, p, strict=True))

    seqs = [ln.seq for ln in raw_lines(log) if any(matches(ln.subject, f) for f in filters)]
    return max(seqs, default=0)


@pytest.mark.parametrize("log", LOGS, ids=[p.stem for p in LOGS])
def test_every_event_decodes_to_a_known_type(log: Path) -> None:
    events = load(log)
    assert events, f"{log.name} is empty"
    unknown = sorted({e.envelope.type for e in events if e.event is None})
    assert not unknown, f"types this build cannot decode: {unknown}"


@pytest.mark.parametrize("log", LOGS, ids=[p.stem for p in LOGS])
def test_pure_views_match_the_recorded_expectation(log: Path) -> None:
    expected = msgspec.json.decode(log.with_suffix(".expected.json").read_bytes())
    assert fold_views(load(log)) == expected["views"]


@pytest.mark.integration
@pytest.mark.parametrize("log", LOGS, ids=[p.stem for p in LOGS])
async def test_projections_rebuilt_from_the_log_match(
    log: Path, nats_server: Any, database_url: str
) -> None:
    expected = msgspec.json.decode(log.with_suffix(".expected.json").read_bytes())
    result = await replay_into(log, nats_server.url, database_url)
    assert result["tables"] == expected["tables"]
