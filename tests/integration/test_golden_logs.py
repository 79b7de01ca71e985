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
from puras_common.events import registered_types
from puras_common.projection import Projection, ProjectorRunner
from puras_drive.adapters.projection import DriveFilesProjection
from puras_gateway.adapters.projections import GATEWAY_PROJECTIONS

GOLDEN = Path(__file__).parent.parent / "golden"
sys.path.insert(0, str(GOLDEN))

from golden import dump_tables, fold_views, load, raw_lines  # noqa: E402

LOGS = sorted(GOLDEN.glob("*.jsonl"))
PROJECTIONS: list[type[Projection]] = [
    *GATEWAY_PROJECTIONS,
    *BILLING_PROJECTIONS,
    DriveFilesProjection,
]


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


def _logged_types() -> dict[str, set[int]]:
    """Every event type in the golden logs, with the versions it was written at."""
    seen: dict[str, set[int]] = {}
    for log in LOGS:
        for rec in load(log):
            seen.setdefault(rec.envelope.type, set()).add(rec.envelope.v)
    return seen


def _product_types() -> dict[str, int]:
    # Tests may register throwaway types; the log's own types live in the packages.
    return {
        tag: cls.version
        for tag, cls in registered_types().items()
        if cls.__module__.startswith("puras_")
    }


def test_every_event_type_has_a_golden_example() -> None:
    missing = sorted(set(_product_types()) - set(_logged_types()))
    assert not missing, (
        f"event types with no example in tests/golden: {missing}; record a log that has "
        "them (tests/golden/README.md)"
    )


def test_every_upcast_version_has_a_golden_example() -> None:
    # An upcaster is only proven by a log its old version really wrote.
    seen = _logged_types()
    untested = sorted(
        f"{tag} v{v}"
        for tag, version in _product_types().items()
        for v in range(1, version)
        if v not in seen.get(tag, set())
    )
    assert not untested, f"old versions with no golden example: {untested}"
