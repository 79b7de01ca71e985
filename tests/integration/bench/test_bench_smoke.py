"""``bench/run.py --quick --no-peer`` against a real stack: it runs, prints our rows with
numbers, writes its JSON, and leaves nothing running."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[3]
NUMBER = re.compile(r"^\d+(\.\d+)?$")


def _row(table: list[str], measure: str) -> list[str]:
    for line in table:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0].startswith(measure):
            return cells
    raise AssertionError(f"no row {measure!r} in:\n" + "\n".join(table))


@pytest.mark.timeout(180)
def test_quick_bench_prints_our_rows(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--quick",
            "--no-peer",
            "--n",
            "15",
            "--warmup",
            "3",
            "--total",
            "64",
            "--isolation-n",
            "20",
            "--no-billing",
            "--no-audit",
            "--sse-streams",
            "40",
            "--sse-first-n",
            "10",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ")]
    for measure in (
        "sync no-op job, 1 client: p50",
        "sync no-op job, 1 client: p99",
        "sync jobs/s, 16 clients",
        "async submit jobs/s",
        "runner: isolated job",
        "memory, whole stack at idle: USS",
        "memory, whole stack under 16-client sync load: PSS peak",
        "memory: idle warm template USS",
        "SSE: POST /v1/jobs?stream=true to the first data frame, p50",
    ):
        puras = _row(table, measure)[1]
        assert NUMBER.match(puras), f"{measure}: Puras column is {puras!r}"
        assert float(puras) > 0
    # No peer: its column is empty and no target is judged.
    assert _row(table, "sync jobs/s, 16 clients")[2] == "—"

    (out,) = tmp_path.glob("*.json")
    res = json.loads(out.read_text())
    assert res["errors"] == []
    assert res["leftover_processes"] == []
    assert res["ours"]["sync_seq"]["n"] == 15
    assert res["ours"]["async_throughput"]["not_succeeded"] == 0
    assert {"sent>accepted", "started>finished", "terminal_wire>answered"} <= set(
        res["ours"]["hops"]["hops"]
    )

    # Memory: every service of the stack at idle and under load, the runner's warm
    # template (the template and its spares) apart from the runner itself.
    mem = res["ours"]["memory"]
    services = {"gateway", "scheduler", "runner", "billing", "drive", "nats-server", "postgres"}
    for phase in ("idle", "load"):
        groups = mem[phase]["groups"]
        assert services <= set(groups), f"{phase}: {sorted(groups)}"
        for name in services:
            g = groups[name]
            assert 0 < g["uss_mib"]["mean"] <= g["rss_mib"]["mean"], (phase, name, g)
        assert mem[phase]["total"]["procs"] > len(services)
    assert mem["load"]["samples"] >= 1
    assert mem["idle_template"]["procs"] >= 2  # the template and at least one spare
    assert mem["idle_template"]["uss_mib"] > 0
    assert _row(table, "SSE: streams of live jobs one gateway holds at once")[1] == "40"

    # Streams: every stream submit reached its first frame and its end; the held ones
    # stayed open on live jobs (held for credit) while the sync jobs ran.
    sse = res["ours"]["sse"]
    assert sse["first"]["first_event"]["n"] == 10
    assert sse["first"]["first_event"]["p50_ms"] <= sse["first"]["end_frame"]["p50_ms"]
    held = sse["held"]
    assert held["census"] == {"open": 40, "ended_by_end_frame": 0, "closed_by_server": 0}
    assert held["open"]["errors"] == 0
    assert held["held_job"]["status"] == "queued"
    assert held["held_job"]["held_reason"]
    assert held["sync_with"]["n"] == held["sync_without"]["n"] == 15


def test_agent_only_bench_prints_the_agent_loop_rows(tmp_path: Path) -> None:
    """``--agent-only`` with the smallest sizes: the loop's steps with both tools over
    both job logs, then submit to first model request on a stack with the fake provider."""
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--agent-only",
            "--agent-runs",
            "1",
            "--agent-steps",
            "4",
            "--agent-n",
            "3",
            "--warmup",
            "2",
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
    table = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ")]
    for measure in (
        "per step, `media` (answers at once, no sandbox), memory job log",
        "per step, `bash` `true` in the job sandbox, nats job log",
        "`bash` `true` through the sandbox session alone",
        "submit (POST /v1/jobs) → first model request",
        "deterministic no-op job, sync, same stack",
    ):
        p50, p95 = _row(table, measure)[1:3]
        assert NUMBER.match(p50), f"{measure}: p50 {p50!r}"
        assert NUMBER.match(p95), f"{measure}: p95 {p95!r}"
        assert 0 < float(p50) <= float(p95)
    # Only the agent loop's table: the deterministic rows were not measured.
    assert not any(ln.startswith("| sync no-op job") for ln in table)

    (out,) = tmp_path.glob("*.json")
    res = json.loads(out.read_text())
    assert res["errors"] == []
    assert res["leftover_processes"] == []
    loop = res["agent"]["loop"]["logs"]
    assert set(loop) == {"memory", "nats"}
    # 1 run of 4 steps: 3 tool steps, the first of them reported apart.
    assert loop["memory"]["bash"]["step_ms"]["n"] == 2
    assert res["agent"]["submit"]["submit_to_first_model_request_ms"]["n"] == 3


def test_billing_only_bench_prints_the_billing_lag_rows(tmp_path: Path) -> None:
    """``--billing-only`` with the smallest sizes: every usage event appended is charged
    once, its lags are timed to the charge and to the balance's commit, and the drains
    report charges/s."""
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "run.py"),
            "--billing-only",
            "--billing-rates",
            "40",
            "--billing-seconds",
            "1",
            "--billing-backlog",
            "40",
            "--billing-hot-path",
            "10",
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
    table = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ")]
    for measure in (
        "floor, billing idle: bare publish → ordered-consumer delivery",
        "its ledger.charged delivered here",
        "the balance committed (projection checkpoint)",
    ):
        cells = _row(table, measure)
        assert cells[1] == "40"
        p50, p99 = cells[2:4]
        assert NUMBER.match(p50), f"{measure}: {cells}"
        assert NUMBER.match(p99), f"{measure}: {cells}"
        assert float(p50) <= float(p99)
    assert _row(table, "its ledger.charged delivered here")[5] == "40/40"
    assert not any(ln.startswith("| sync no-op job") for ln in table)

    (out,) = tmp_path.glob("*.json")
    res = json.loads(out.read_text())
    assert res["errors"] == []
    assert res["leftover_processes"] == []
    b = res["billing"]
    assert b["duplicate_charges_seen"] == 0
    assert b["publish_errors"] == []
    drain = b["throughput"]["40"]
    assert (drain["missing"], drain["projected"]) == (0, True)
    assert drain["charges_per_s"] > 0
    hot = b["hot_path"]
    assert (hot["missing"], hot["job_events"]) == (0, 110)
