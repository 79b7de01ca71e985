"""Puras benchmarks, with the Celery + Redis peer in the same run (``./dev bench``).

In one run, on this machine:

a. a sync no-op job over HTTP, one client, warm runner: ``POST /v1/jobs?wait=true``
   (N sequential requests on one keep-alive httpx.Client after a warm-up), and the same
   for Celery behind a FastAPI sync endpoint (``POST /run``) and its HTTP floor (``/echo``);
b. throughput: ``--clients`` threads (16) each submitting sync jobs, ``--total`` in all,
   for both systems with the same client code; plus ours with async submits (no wait),
   completion taken from the event log;
c. the runner's isolation overhead per job (fork-per-job vs an in-process call);
d. with ``--agent`` (or ``--agent-only``): the agent loop's own time per step with a
   model that answers at once (``puras_bench.agent_loop``: a no-op tool and ``bash``
   ``true`` in the sandbox, over an in-memory and the NATS job log), and the time from
   submit to the first model request on a dev stack whose provider is the scripted fake
   (``puras_bench.agent_submit``);
e. with ``--billing`` (or ``--billing-only`` alone): the billing lag
   (``puras_bench.billing_lag``; a stack of its own, about 2.5 min, so not in the default
   run): usage events appended to the log at steady rates, each timed from its publish
   ack to its ledger charge and to the balance projection's commit, the max charge
   throughput, and the job events/s billing keeps up with when most are not usage; the
   floor is a bare publish → subscribe hop on the same NATS (no peer bills);
f. the billing audit's replay (``puras_bench.audit_replay``; ``--audit-only`` alone,
   ``--no-audit`` to leave it out): ``--audit-events`` ledger and job events (200,000)
   appended to a log of its own, folded by the real projections, then ``puras admin
   audit``'s replay from sequence 1 timed (events/s) and its whole run;
g. with ``--drive`` (or ``--drive-only`` alone): the drive (``puras_bench.drive_io``; a
   stack per storage backend, filesystem and S3 on a moto server): upload and download
   throughput of a file just under the 50 MiB cap through the API, the gateway's and
   the drive's peak memory meanwhile, the same file to and from the raw store, and what
   reading a 1 KiB drive file adds to a sync job over the same bytes inline;
h. job event streams (``puras_bench.sse_scale``): the first SSE data frame after
   ``POST /v1/jobs?stream=true`` (``--sse-first-n`` sequential submits, in every run
   unless ``--no-sse``), and ``--sse-streams`` (10,000) streams of live jobs (held for
   credit) opened on the gateway at once, the sync job's latency and the gateway's
   memory while they are open against before (``--no-sse-streams`` leaves that part
   out). Each stream is a job submitted (350 a second on a quiet 2-core VM, about 100
   on a busy one), so the part takes 35 s to 2 min; opening stops after 100 s and says
   how many it reached.

Memory (``puras_bench.memstat``): RSS, PSS and USS of every process of both stacks,
summed per service, at idle after the warm-up and sampled under the sync load of (b),
with the runner's warm template and its spares on a row of their own.

Our stack runs first (a dev stack in a temp dir, Postgres fsync on), then is stopped; the
peer runs after it, never at the same time. Prints one Markdown table (stdout), progress
on stderr, and writes everything to ``bench/results/<UTC timestamp>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from puras_bench import report
from puras_bench.load import Call, run_concurrent, run_sequential
from puras_bench.machine import machine_facts
from puras_bench.memstat import OUR_SPLIT, PEER_SPLIT, MemSampler, idle_memory, template_row
from puras_bench.procstat import CpuMeter, wait_quiet

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small N everywhere (a smoke run)")
    ap.add_argument("--no-peer", action="store_true", help="skip the Celery + Redis peer")
    ap.add_argument("--n", type=int, help="sequential requests per latency measure (500; quick 30)")
    ap.add_argument("--warmup", type=int, help="untimed requests before them (50; quick 5)")
    ap.add_argument("--total", type=int, help="jobs per throughput measure (3000; quick 160)")
    ap.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    ap.add_argument("--runner-slots", type=int, help="PURAS_RUNNER_SLOTS for our runner")
    ap.add_argument(
        "--gateway-workers",
        type=int,
        default=1,
        metavar="N",
        help="HTTP processes of our gateway sharing its port (PURAS_GATEWAY_WORKERS; 1)",
    )
    ap.add_argument(
        "--schedulers",
        type=int,
        default=1,
        metavar="N",
        help="scheduler processes sharing its durable command consumer (1)",
    )
    ap.add_argument(
        "--stack-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for our services, for experiments "
        "(e.g. PURAS_GATEWAY_RUN_PROJECTORS=false); repeatable",
    )
    ap.add_argument(
        "--isolation-n", type=int, help="jobs for the isolation overhead (500; quick 50)"
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="after the measures, py-spy profiles of gateway, scheduler and runner "
        "under the sync 16-client load (py-spy is installed into a scratch venv)",
    )
    ap.add_argument("--profile-seconds", type=int, default=10)
    ap.add_argument(
        "--profile-load",
        choices=("sync", "seq"),
        default="sync",
        help="load while profiling: sync jobs from --clients clients (default) or one client",
    )
    ap.add_argument("--no-isolation", action="store_true", help="skip (c), the runner's own bench")
    ap.add_argument(
        "--no-celery-direct",
        action="store_true",
        help="skip the context rows of Celery without HTTP",
    )
    ap.add_argument(
        "--agent",
        action="store_true",
        help="also measure the agent loop (d): per-step overhead and submit to first model "
        "request (a stack of its own, after the others)",
    )
    ap.add_argument("--agent-only", action="store_true", help="only the agent loop's measures (d)")
    ap.add_argument("--agent-steps", type=int, default=20, help="steps per agent run (20)")
    ap.add_argument("--agent-runs", type=int, help="agent runs per loop measure (10; quick 3)")
    ap.add_argument(
        "--agent-n", type=int, help="agent jobs for submit to first model request (50; quick 10)"
    )
    ap.add_argument(
        "--billing",
        action="store_true",
        help="also measure the billing lag (e) (a stack of its own, ~2.5 min; off by default)",
    )
    ap.add_argument("--no-billing", action="store_true", help="skip (e), the billing lag")
    ap.add_argument("--billing-only", action="store_true", help="only the billing lag (e)")
    ap.add_argument(
        "--billing-rates",
        type=lambda v: [int(x) for x in v.split(",")],
        help="steady usage events/s for (e), comma-separated (50,200; quick 50)",
    )
    ap.add_argument(
        "--billing-seconds", type=float, help="seconds per steady rate in (e) (5; quick 2)"
    )
    ap.add_argument(
        "--billing-backlog",
        type=lambda v: [int(x) for x in v.split(",")],
        help="usage events of (e)'s throughput measures, comma-separated (200,600; quick 100)",
    )
    ap.add_argument(
        "--billing-hot-path",
        type=int,
        help="usage events of (e)'s hot-path measure, ten job.log events before each "
        "(250; quick 50)",
    )
    ap.add_argument(
        "--billing-projects", type=int, default=4, help="projects the usage is spread over (4)"
    )
    ap.add_argument("--no-audit", action="store_true", help="skip (f), the audit's replay")
    ap.add_argument("--audit-only", action="store_true", help="only the audit's replay (f)")
    ap.add_argument(
        "--audit-events", type=int, help="events in the log (f) replays (200000; quick 20000)"
    )
    ap.add_argument(
        "--drive",
        action="store_true",
        help="also measure the drive (g) (a stack per backend, a few minutes; off by default)",
    )
    ap.add_argument("--drive-only", action="store_true", help="only the drive's measures (g)")
    ap.add_argument(
        "--drive-bytes", type=int, help="size of (g)'s file (50 MiB - 64 KiB; quick 4 MiB)"
    )
    ap.add_argument(
        "--drive-runs", type=int, help="timed transfers per measure in (g) (5; quick 2)"
    )
    ap.add_argument(
        "--drive-job-n", type=int, help="sync jobs per input shape in (g) (200; quick 20)"
    )
    ap.add_argument(
        "--drive-backends",
        type=lambda v: tuple(x.strip() for x in v.split(",") if x.strip()),
        default=("filesystem", "s3"),
        help="storage backends of (g), comma-separated (filesystem,s3)",
    )
    ap.add_argument(
        "--no-sse-streams",
        action="store_true",
        help="skip holding --sse-streams SSE streams of live jobs at once (part of (h))",
    )
    ap.add_argument("--sse-streams", type=int, help="streams held at once (10000; quick 500)")
    ap.add_argument(
        "--sse-first-n", type=int, help="stream submits timed to the first event (200; quick 30)"
    )
    ap.add_argument("--no-sse", action="store_true", help="skip (h) altogether")
    ap.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes (bench/results)")
    a = ap.parse_args(argv)
    q = a.quick
    a.n = a.n or (30 if q else 500)
    a.warmup = a.warmup if a.warmup is not None else (5 if q else 50)
    a.total = a.total or (160 if q else 3000)
    a.isolation_n = a.isolation_n or (50 if q else 500)
    a.agent_runs = a.agent_runs or (3 if q else 10)
    a.agent_n = a.agent_n or (10 if q else 50)
    a.billing_rates = a.billing_rates or ([50] if q else [50, 200])
    a.billing_seconds = a.billing_seconds or (2.0 if q else 5.0)
    a.billing_backlog = a.billing_backlog or ([100] if q else [200, 600])
    a.billing_hot_path = a.billing_hot_path or (50 if q else 250)
    # (e) drains a backlog that builds up past billing's sustainable rate: opt-in.
    a.no_billing = a.no_billing or not (a.billing or a.billing_only)
    a.audit_events = a.audit_events or (20_000 if q else 200_000)
    a.drive_bytes = a.drive_bytes or (4 * 1024 * 1024 if q else 50 * 1024 * 1024 - 64 * 1024)
    a.drive_runs = a.drive_runs or (2 if q else 5)
    a.drive_job_n = a.drive_job_n or (20 if q else 200)
    a.drive = a.drive or a.drive_only
    a.sse_streams = a.sse_streams if a.sse_streams is not None else (500 if q else 10_000)
    a.sse_first_n = a.sse_first_n or (30 if q else 200)
    if a.agent_only:
        a.agent = a.no_peer = a.no_isolation = True
        a.no_billing = a.no_audit = True
    if a.billing_only:
        a.no_peer = a.no_isolation = a.no_audit = True
        a.agent = a.no_billing = False
    if a.audit_only:
        a.no_peer = a.no_isolation = a.no_billing = True
        a.agent = a.no_audit = False
    if a.drive_only:
        a.no_peer = a.no_isolation = a.no_billing = a.no_audit = True
        a.agent = False
    return a


def cpu_per_job(meter: CpuMeter, client_s: float, jobs: int) -> dict[str, Any]:
    per = {k: round(v * 1000 / jobs, 3) for k, v in meter.used.items()}
    per["bench client"] = round(client_s * 1000 / jobs, 3)
    # What a service's child processes used (the runner's templates and forked jobs,
    # Postgres backends, Celery's prefork children), shown apart from the process itself.
    kids = {
        k: round((meter.used[k] - meter.used_self[k]) * 1000 / jobs, 3)
        for k in meter.used
        if meter.used[k] - meter.used_self[k] > 0
    }
    return {
        "jobs": jobs,
        "per_job_ms": per,
        "children_per_job_ms": kids,
        "total_per_job_ms": round(sum(per.values()), 3),
        # Every process on the machine (ours, the other tenants', the kernel's): a check on
        # the per-process sum and a sign of other load during the phase.
        "machine_busy_per_job_ms": round(meter.machine_busy_s * 1000 / jobs, 3),
        "machine_utilization": round(meter.machine_busy_s / meter.machine_total_s, 3)
        if meter.machine_total_s
        else None,
        # CPU the machine spent on anything but the measured processes and this client:
        # other tenants of a shared machine. Near 0 on a quiet one.
        "other_load": round(
            max(0.0, meter.machine_busy_s - sum(meter.used.values()) - client_s)
            / meter.machine_total_s,
            3,
        )
        if meter.machine_total_s
        else None,
    }


@contextlib.contextmanager
def measured(roots: dict[str, int], jobs: int, into: dict[str, Any], key: str):  # type: ignore[no-untyped-def]
    """CPU of every root's process tree and of this process over the block, per job."""
    t_self = os.times()
    with CpuMeter(roots) as m:
        yield
    t_after = os.times()
    client_s = (t_after.user - t_self.user) + (t_after.system - t_self.system)
    into[key] = cpu_per_job(m, client_s, jobs)


# -- ours --------------------------------------------------------------------------------


def bench_ours(args: argparse.Namespace, res: dict[str, Any]) -> None:
    from puras_bench.ours import (
        TerminalWatcher,
        WireObserver,
        healthz_call,
        hop_breakdown,
        noop_call,
        started_stack,
    )

    env: dict[str, str] = {}
    if args.runner_slots:
        env["PURAS_RUNNER_SLOTS"] = str(args.runner_slots)
    for kv in args.stack_env:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise SystemExit(f"--stack-env wants KEY=VALUE, not {kv!r}")
        env[key] = value
    o: dict[str, Any] = res["ours"]
    o["config"] = {
        "stack": "puras dev stack: nats-server (JetStream file store, default sync), embedded "
        "Postgres (fsync on), gateway/scheduler/runner/billing/drive, 1 runner",
        "env": env,
        "skill": "bench/project/skills/noop (deterministic, returns its inputs; "
        "input_schema x: integer)",
        "gateway_http": f"uvicorn {args.gateway_workers} process(es) on one port, "
        "uvloop + httptools; projections in their own process",
        "schedulers": f"{args.schedulers} process(es) pulling from one durable consumer",
    }
    with started_stack(
        env, log, gateway_workers=args.gateway_workers, schedulers=args.schedulers
    ) as ours:
        pids = ours.pids()
        o["pids"] = pids
        sync = noop_call(ours, wait=True)

        log(f"(a) warm-up: {args.warmup} sync jobs")
        run_sequential(sync, max(args.warmup, 1), 0)
        o["memory"] = {"idle_quiet_after_s": wait_quiet(pids, below_cores=0.1, timeout_s=10)}
        o["memory"]["idle"] = idle_memory(pids, OUR_SPLIT)
        o["memory"]["idle_template"] = template_row(o["memory"]["idle"])
        log(f"    memory at idle: {report.memory_line(o['memory']['idle'])}")
        log(f"(a) sync no-op job, 1 client, {args.n} sequential requests")
        with measured(pids, args.n, o, "cpu_sync_seq"):
            o["sync_seq"], _ = run_sequential(sync, args.n, 0)
        log(f"    {o['sync_seq']}")
        o["http_floor_seq"], _ = run_sequential(healthz_call(ours), args.n, args.warmup)
        log(f"    HTTP floor (GET /healthz): {o['http_floor_seq']}")

        # The timeline: a separate run of sequential jobs with a NATS observer on (it adds
        # a subscriber to every message of the job, so it stays out of the timed run).
        n_tl = min(args.n, 300)
        log(f"    timeline: {n_tl} more sequential jobs with a wire observer, then their events")
        wire = WireObserver(ours.stack.nats_url, ours.project_id).start()
        try:
            _, tl_samples = run_sequential(sync, n_tl, 0)
        finally:
            wire.stop()
        with httpx.Client(base_url=ours.stack.api_base, headers=ours.auth, timeout=30) as http:
            try:
                o["hops"] = hop_breakdown(http, tl_samples, wire.seen)
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                # e.g. a --stack-env experiment without the jobs projection: no timeline.
                o["hops"] = {"n": 0, "hops": {}, "error": repr(exc)}
                log(f"    no timeline: {exc!r}")
        for name, h in o["hops"]["hops"].items():
            log(f"    {name:24s} p50 {h['p50_ms']:7.3f} ms  mean {h['mean_ms']:7.3f} ms")

        log(f"(b) sync throughput: {args.total} jobs from {args.clients} clients")
        with (
            measured(pids, args.total, o, "cpu_sync_throughput"),
            MemSampler(pids, OUR_SPLIT) as mem,
        ):
            tp = run_concurrent(sync, args.total, args.clients)
        tp.pop("t0_perf")
        o["sync_throughput"] = tp
        o["memory"]["load"] = mem.summary
        o["memory"]["sampler_cpu_s"] = round(mem.cpu_s, 3)
        log(f"    memory under load, peak: {report.memory_line(mem.summary, 'peak')}")
        log(f"    {tp['jobs_per_s']} jobs/s in {tp['elapsed_s']}s")

        log(
            f"(b) async submits: {args.total} jobs from {args.clients} clients, "
            "completion from the event log"
        )
        watcher = TerminalWatcher(ours.stack.nats_url, ours.project_id).start()
        try:
            ids: list[str] = []
            submit = noop_call(ours, wait=False)
            with measured(pids, args.total, o, "cpu_async_throughput"):
                at = run_concurrent(
                    submit, args.total, args.clients, on_answer=lambda a: ids.append(a["id"])
                )
                t_last = watcher.wait_for(ids, timeout=600)
            t0 = at.pop("t0_perf")
            failed = [i for i in ids if watcher.done[i][1] != "job.succeeded"]
            elapsed = t_last - t0
            o["async_throughput"] = {
                "jobs": args.total,
                "clients": args.clients,
                "submit_phase_s": at["elapsed_s"],
                "submit_per_s": at["jobs_per_s"],
                "submit_latency": at["latency_under_load"],
                "elapsed_s": round(elapsed, 3),
                "jobs_per_s": round(args.total / elapsed, 1),
                "not_succeeded": len(failed),
            }
            if failed:
                raise RuntimeError(f"{len(failed)} async jobs did not succeed, e.g. {failed[:3]}")
        finally:
            watcher.stop()
        log(
            f"    {o['async_throughput']['jobs_per_s']} jobs/s (submits alone {at['jobs_per_s']}/s)"
        )

        if args.profile:
            profile_ours(args, sync, pids, o)

        if not args.no_sse:
            from puras_bench import sse_scale

            plan = sse_scale.SsePlan(
                first_n=args.sse_first_n,
                first_warmup=max(2, args.warmup // 5),
                streams=0 if args.no_sse_streams else args.sse_streams,
                sync_n=max(10, min(100, args.n)),
                sync_warmup=max(2, min(10, args.warmup)),
            )
            o["sse"] = sse_scale.run(ours, plan, pids, log)


def profile_ours(
    args: argparse.Namespace, sync: Call, pids: dict[str, int], o: dict[str, Any]
) -> None:
    from puras_bench.profiling import PySpy, ensure_py_spy, summarize

    exe = ensure_py_spy(log)
    if exe is None:
        o["profile"] = {"error": "py-spy not available"}
        return
    rate = 250
    out_dir = Path(os.environ.get("PURAS_BENCH_PROFILE_DIR", "/tmp")) / (
        "puras-bench-profile-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    )
    spy = PySpy(exe, out_dir, rate=rate)
    targets = {k: v for k, v in pids.items() if k in ("gateway", "scheduler", "runner")}
    clients = args.clients if args.profile_load == "sync" else 1
    log(
        f"profiling {', '.join(targets)} for {args.profile_seconds}s under sync load "
        f"({clients} client(s)); raw profiles in {out_dir}"
    )
    done: list[int] = []
    spy.start(targets, args.profile_seconds, subprocesses=frozenset({"runner"}))
    t0 = time.monotonic()
    # Load until the profilers are done: chunks of sync jobs from the same clients.
    while time.monotonic() - t0 < args.profile_seconds + 0.5:
        r = run_concurrent(sync, clients * 20, clients)
        done.append(r["jobs"])
    files = spy.wait()
    # Jobs run while the profilers were sampling (the last chunk may overrun a little).
    jobs = int(sum(done) * min(1.0, args.profile_seconds / (time.monotonic() - t0)))
    prof: dict[str, Any] = {
        "load": f"sync jobs, {clients} client(s)",
        "rate_hz": rate,
        "seconds": args.profile_seconds,
        "jobs": jobs,
        "dir": str(out_dir),
    }
    for name, f in files.items():
        prof[name] = summarize(f, rate, jobs) if isinstance(f, Path) else {"error": f}
    o["profile"] = prof


# -- the agent loop ----------------------------------------------------------------------


def bench_agent(args: argparse.Namespace, res: dict[str, Any]) -> None:
    from puras_bench.agent_loop import measure_agent_loop
    from puras_bench.agent_submit import measure_submit_to_first_model_request

    a: dict[str, Any] = res.setdefault("agent", {})
    log(
        f"(d) agent loop, instant model: {args.agent_runs} runs x {args.agent_steps} steps per "
        "tool and job log"
    )
    # The runner's log lines go to stdout: keep them off ours.
    with contextlib.redirect_stdout(sys.stderr):
        a["loop"] = measure_agent_loop(
            steps=args.agent_steps, runs=args.agent_runs, warmup=2, on_progress=log
        )
    log(f"(d) submit to first model request: {args.agent_n} sync agent jobs on a dev stack")
    a["submit"] = measure_submit_to_first_model_request(
        args.agent_n, max(2, args.warmup // 10), log
    )


# -- billing lag -------------------------------------------------------------------------


def bench_billing(args: argparse.Namespace, res: dict[str, Any]) -> None:
    from puras_bench.billing_lag import BillingPlan, measure_billing_lag

    plan = BillingPlan(
        rates=tuple(args.billing_rates),
        seconds=args.billing_seconds,
        backlogs=tuple(args.billing_backlog),
        hot_path_usage=args.billing_hot_path,
        projects=args.billing_projects,
    )
    log(
        f"(e) billing lag: usage events at {', '.join(map(str, plan.rates))}/s for "
        f"{plan.seconds:g}s each, then backlogs of {', '.join(map(str, plan.backlogs))}"
    )
    env: dict[str, str] = {}
    for kv in args.stack_env:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise SystemExit(f"--stack-env wants KEY=VALUE, not {kv!r}")
        env[key] = value
    res["billing"] = measure_billing_lag(plan, log, env)
    res["billing"]["env"] = env


# -- the drive ---------------------------------------------------------------------------


def bench_drive(args: argparse.Namespace, res: dict[str, Any]) -> None:
    from puras_bench.drive_io import DrivePlan, measure_drive

    plan = DrivePlan(
        file_bytes=args.drive_bytes,
        runs=args.drive_runs,
        job_n=args.drive_job_n,
        job_warmup=max(2, args.drive_job_n // 10),
        backends=args.drive_backends,
    )
    env: dict[str, str] = {}
    for kv in args.stack_env:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise SystemExit(f"--stack-env wants KEY=VALUE, not {kv!r}")
        env[key] = value
    res["drive"] = measure_drive(plan, log, env)
    res["drive"]["env"] = env
    if res["drive"]["errors"]:
        raise RuntimeError("; ".join(res["drive"]["errors"]))


# -- the peer ----------------------------------------------------------------------------


def bench_peer(args: argparse.Namespace, res: dict[str, Any]) -> None:
    from puras_bench.peer import PeerUnavailable, celery_direct, peer_calls, started_peer

    p: dict[str, Any] = res["peer"]
    p["config"] = {
        "broker_and_results": "redis-server (own, loopback, --save '' --appendonly no)",
        "worker": "celery --pool=prefork --concurrency=2 --without-gossip --without-mingle "
        "--without-heartbeat; JSON serializers; defaults otherwise",
        "http": "FastAPI sync endpoint /run -> noop.apply_async((x,)).get(timeout=10); "
        "uvicorn 1 process; /echo = the same app without Celery",
    }
    try:
        with started_peer(log) as peer:
            p["versions"] = peer.versions()
            pids = peer.pids()
            run, echo = peer_calls(peer)
            log(f"(a) Celery: warm-up {args.warmup}, then /echo and /run, {args.n} sequential")
            p["echo_seq"], _ = run_sequential(echo, args.n, args.warmup)
            run_sequential(run, max(args.warmup, 1), 0)
            p["memory"] = {"idle_quiet_after_s": wait_quiet(pids, below_cores=0.1, timeout_s=10)}
            p["memory"]["idle"] = idle_memory(pids, PEER_SPLIT)
            log(f"    memory at idle: {report.memory_line(p['memory']['idle'])}")
            with measured(pids, args.n, p, "cpu_run_seq"):
                p["run_seq"], _ = run_sequential(run, args.n, 0)
            log(f"    /echo {p['echo_seq']}")
            log(f"    /run  {p['run_seq']}")
            log(f"(b) Celery: /run throughput, {args.total} jobs from {args.clients} clients")
            with (
                measured(pids, args.total, p, "cpu_run_throughput"),
                MemSampler(pids, PEER_SPLIT) as mem,
            ):
                tp = run_concurrent(run, args.total, args.clients)
            tp.pop("t0_perf")
            p["run_throughput"] = tp
            p["memory"]["load"] = mem.summary
            p["memory"]["sampler_cpu_s"] = round(mem.cpu_s, 3)
            log(f"    memory under load, peak: {report.memory_line(mem.summary, 'peak')}")
            log(f"    {tp['jobs_per_s']} jobs/s in {tp['elapsed_s']}s")
            if not args.no_celery_direct:
                log("    context: Celery without HTTP (apply_async().get() from the peer venv)")
                p["celery_direct"] = celery_direct(
                    peer, args.n, args.warmup, args.total, args.clients
                )
        p["ok"] = True
    except PeerUnavailable as exc:
        p["ok"] = False
        p["error"] = str(exc)
        log(f"the Celery peer could not run: {exc}")


# -- main --------------------------------------------------------------------------------


def leftovers() -> list[str]:
    """Processes descended from this one that are still alive (should be none)."""
    mine = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == mine:
            continue
        with contextlib.suppress(OSError):
            data = Path(f"/proc/{name}/stat").read_bytes()
            rest = data[data.rindex(b")") + 2 :].split()
            ppid, state = int(rest[1]), rest[0]
            if state == b"Z":
                continue
            # Walk up to see whether we are an ancestor.
            pid = ppid
            for _ in range(64):
                if pid == mine:
                    comm = data[data.index(b"(") + 1 : data.rindex(b")")].decode(errors="replace")
                    found.append(f"{name} ({comm})")
                    break
                if pid <= 1:
                    break
                d2 = Path(f"/proc/{pid}/stat").read_bytes()
                pid = int(d2[d2.rindex(b")") + 2 :].split()[1])
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    # Held SSE streams are sockets; the stack's processes inherit the limit from here.
    from puras_bench.sse_scale import raise_nofile

    raise_nofile()
    res: dict[str, Any] = {
        "machine": machine_facts(),
        "config": {
            "quick": args.quick,
            "n": args.n,
            "warmup": args.warmup,
            "total": args.total,
            "clients": args.clients,
            "runner_slots": args.runner_slots,
            "gateway_workers": args.gateway_workers,
            "schedulers": args.schedulers,
            "isolation_n": args.isolation_n,
            "stack_env": args.stack_env,
            "agent": args.agent,
            "agent_only": args.agent_only,
            "agent_steps": args.agent_steps,
            "agent_runs": args.agent_runs,
            "agent_n": args.agent_n,
            "billing": not args.no_billing,
            "billing_only": args.billing_only,
            "audit": not args.no_audit,
            "audit_only": args.audit_only,
            "audit_events": args.audit_events,
            "drive": args.drive,
            "drive_only": args.drive_only,
            "drive_bytes": args.drive_bytes,
            "drive_runs": args.drive_runs,
            "drive_job_n": args.drive_job_n,
            "drive_backends": list(args.drive_backends),
            "sse": not args.no_sse,
            "sse_streams": 0 if args.no_sse or args.no_sse_streams else args.sse_streams,
            "sse_first_n": args.sse_first_n,
            "client": "httpx.Client keep-alive, one per thread",
        },
        "ours": {},
        "peer": {"ok": False, "skipped": args.no_peer},
        "isolation": None,
        "errors": [],
    }
    m = res["machine"]
    log(
        f"machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_mb']} MB, kernel "
        f"{m['kernel']}, Python {m['python']}, load average {m['loadavg_before']}, "
        f"CPU busy before the run {m['busy_before']:.0%}"
    )
    if m["busy_before"] > 0.15:
        log(
            "WARNING: the machine is busy with other work; figures will be lower than on a "
            "quiet machine (both systems are measured under it, one after the other)"
        )
    t_start = time.monotonic()
    status = 0
    try:
        try:
            if not (args.agent_only or args.billing_only or args.audit_only or args.drive_only):
                bench_ours(args, res)
        except Exception as exc:
            res["errors"].append(f"ours: {exc!r}")
            log(f"our measures failed: {exc!r}\n{traceback.format_exc()}")
            status = 1

        if not args.no_isolation:
            log(
                f"(c) runner isolation overhead: {args.isolation_n} no-op jobs, "
                "fork-per-job vs in-process"
            )
            try:
                from puras_bench.isolation import measure_isolation_overhead

                # Its progress lines are the runner's log lines: keep them off our stdout.
                with contextlib.redirect_stdout(sys.stderr):
                    res["isolation"] = measure_isolation_overhead(args.isolation_n)
                iso = res["isolation"]
                log(
                    f"    isolated job p50 {iso['isolated_job_us']['p50']} us, in-process call p50 "
                    f"{iso['in_process_call_us']['p50']} us"
                )
            except Exception as exc:
                res["errors"].append(f"isolation: {exc!r}")
                log(f"isolation overhead not measured: {exc!r}")

        if not args.no_peer:
            try:
                bench_peer(args, res)
            except Exception as exc:
                res["peer"]["ok"] = False
                res["peer"]["error"] = repr(exc)
                res["errors"].append(f"peer: {exc!r}")
                log(f"the Celery peer failed: {exc!r}\n{traceback.format_exc()}")

        if not args.no_billing:
            try:
                bench_billing(args, res)
            except Exception as exc:
                res["errors"].append(f"billing: {exc!r}")
                log(f"the billing lag was not measured: {exc!r}\n{traceback.format_exc()}")
                status = 1

        if not args.no_audit:
            try:
                from puras_bench.audit_replay import measure_audit

                log(f"(f) billing audit: {args.audit_events} events replayed from sequence 1")
                with contextlib.redirect_stdout(sys.stderr):
                    res["audit"] = measure_audit(args.audit_events, log)
            except Exception as exc:
                res["errors"].append(f"audit: {exc!r}")
                log(f"the audit's replay was not measured: {exc!r}\n{traceback.format_exc()}")
                status = 1

        if args.drive:
            try:
                bench_drive(args, res)
            except Exception as exc:
                res["errors"].append(f"drive: {exc!r}")
                log(f"the drive was not measured: {exc!r}\n{traceback.format_exc()}")
                status = 1

        if args.agent:
            try:
                bench_agent(args, res)
            except Exception as exc:
                res["errors"].append(f"agent: {exc!r}")
                log(f"the agent loop's measures failed: {exc!r}\n{traceback.format_exc()}")
                status = 1
    finally:
        left = leftovers()
        res["leftover_processes"] = left
        if left:
            log(f"WARNING: processes left running: {', '.join(left)}")
            status = 1
        else:
            log("nothing left running")
        res["wall_s"] = round(time.monotonic() - t_start, 1)
        res["machine"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{stamp}.json"
    path.write_text(json.dumps(res, indent=2, default=str))

    print()
    title = (
        "Puras agent loop"
        if args.agent_only
        else "Puras billing lag"
        if args.billing_only
        else "Puras billing audit"
        if args.audit_only
        else "Puras drive"
        if args.drive_only
        else "Puras vs Celery+Redis"
    )
    print(
        f"{title} — {m['date_utc']}, {m['nproc']} CPUs ({m['cpu_model']}), "
        f"load before {m['loadavg_before']}, CPU busy before {m['busy_before']:.0%}"
    )
    if args.agent_only:
        print("(agent loop only: no peer has one; compared with our deterministic job path)")
    elif args.billing_only:
        print("(billing lag only: no peer bills from an event log; compared with a bare hop)")
    elif args.audit_only:
        print("(billing audit only: no peer audits its bills from a log)")
    elif args.drive_only:
        print("(drive only: compared with the raw store, same file, same client, same run)")
    elif args.no_peer:
        print("(peer skipped: --no-peer)")
    elif not res["peer"].get("ok"):
        print(f"(the Celery peer could not run: {res['peer'].get('error')})")
    print()
    if not (args.agent_only or args.billing_only or args.audit_only or args.drive_only):
        print(report.table(res))
        print(report.detail_tables(res))
        for extra in (report.memory_table(res), report.sse_table(res)):
            if extra:
                print()
                print(extra)
    billing = report.billing_table(res)
    if billing:
        print()
        print(billing)
    if res.get("audit"):
        from puras_bench.audit_replay import audit_table

        print()
        print(audit_table(res["audit"]))
    if res.get("drive"):
        from puras_bench.drive_io import drive_table

        print()
        print(drive_table(res["drive"]))
    agent = report.agent_table(res)
    if agent:
        print()
        print(agent)
    print()
    print(f"raw results: {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
