"""``bench/run.py --audit-only`` with a small log: the audit's replay is measured on a
log it finds clean, its row printed with numbers, nothing left running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[3]


def test_audit_only_bench_measures_a_clean_replay(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--audit-only",
            "--audit-events",
            "3000",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| replay from sequence 1 |" in proc.stdout
    assert "| result | clean |" in proc.stdout
    (out,) = tmp_path.glob("*.json")
    res = json.loads(out.read_text())
    assert res["errors"] == []
    assert res["leftover_processes"] == []
    audit = res["audit"]
    assert audit["clean"] is True
    assert audit["events"] >= 3000
    assert audit["billed_calls"] > 0
    assert audit["replay_events_per_s"] > 0
    # Only (f): none of the stack's measures ran.
    assert res["ours"] == {}
