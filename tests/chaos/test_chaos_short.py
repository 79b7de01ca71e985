"""The short chaos run of CI: ~200 mixed jobs from 4 clients in 2 projects while the
gateway, the scheduler, both runners, billing, drive and nats-server are each killed -9
and restarted; nothing accepted may be lost, stuck, duplicated or run to two results, and
every projection must rebuild equal. ``./dev chaos`` is the full form (1,000 jobs)."""

from __future__ import annotations

import pytest
from chaos_harness import ChaosConfig, run_chaos

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.chaos,
    pytest.mark.timeout(240),
]


def test_nothing_accepted_is_lost_stuck_or_run_twice_under_kills() -> None:
    report = run_chaos(
        ChaosConfig(jobs=200, clients=4, projects=2, seed=7, duration_s=35.0, settle_s=60.0),
        progress=print,
    )
    print(report.render())
    assert report.ok, report.render()
    assert len(report.kills) == 7
    assert report.accepted >= 150
    assert set(report.by_status) <= {"succeeded", "failed", "cancelled"}
    assert {"succeeded", "failed", "cancelled"} <= set(report.by_status)
