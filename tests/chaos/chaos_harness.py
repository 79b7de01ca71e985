"""The chaos harness: a bounded mixed load while every process of a dev stack is killed.

:func:`run_chaos` starts a :class:`~puras_cli.devstack.Stack` with two runners, makes
``projects`` funded projects with the chaos project (``project/`` beside this file)
deployed, and has ``clients`` threads submit ``jobs`` jobs over HTTP, spread over
``duration_s``. Meanwhile it SIGKILLs each service in turn (gateway, scheduler, both
runners, billing, drive) and then nats-server, and starts each again (the services with
:meth:`Stack.start_service`, nats-server on the same port and store).

The mix: jobs that succeed (``work``: sleeps, then returns a digest of its tag, a pure
function of the inputs), jobs that fail by their own code (``fail``), jobs that hit their
wall-clock limit (``hang``), jobs cancelled while queued and while running, and jobs of
one more project that has no credit until part-way through the load (held queued, J7,
then released; some cancelled while held); about half of all submits carry an
``Idempotency-Key``. A client retries a submit only with its key (a
connection refused, a dropped connection, a 5xx), so a retry can never make a second job,
and a submit whose outcome is unknown is settled by the retry. A submit without a key is
never retried: when it fails it is counted as not accepted.

Then, after waiting (bounded) until every job is terminal, it checks:

* every accepted job (a 2xx with a job id) exists, in the job list and by id, and is
  terminal; none is left queued or running;
* each job has at most one terminal event, over the API and in the event log itself;
  a succeeded ``work`` job has exactly the result its inputs determine; each job ended
  the way its kind says it must (with the outcomes J6/J11 allow, counted);
* each tag (one per planned job) maps to at most one job, and an idempotent repeat
  answers with the original id;
* a cancel of an accepted job is never a 404 (J4);
* no service exited on its own during the run;
* ``puras admin rebuild all`` (its Python API) finds every projection equal.

Everything that fails is collected in :attr:`ChaosReport.problems`, with the job id, its
events and the kills around it; :meth:`ChaosReport.render` prints the figures (also the
time from each job's acceptance to its ``queued`` event). ``docs/reliability.md`` has the
latest full run and what the suite found.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from puras_bundle import pack_project
from puras_cli import api
from puras_cli.client import PurasError
from puras_cli.devstack import Stack
from puras_cli.devstack.stack import StackError, claim_work_dir

__all__ = [
    "CHAOS_ENV",
    "PROJECT_DIR",
    "ChaosConfig",
    "ChaosReport",
    "Kill",
    "expected_work_result",
    "run_chaos",
]

PROJECT_DIR = Path(__file__).resolve().parent / "project"
"""Skills ``work``, ``fail`` and ``hang``."""

CHAOS_ENV = {
    # A lost runner is noticed within seconds, so its jobs run again while we watch.
    "PURAS_RUNNER_ACK_WAIT_S": "3",
    "PURAS_RUNNER_MAX_ATTEMPTS": "3",
    "PURAS_RUNNER_SHUTDOWN_GRACE_S": "2",
    # Two slots per runner: the slow jobs fill them now and then, so jobs wait queued
    # (and are cancelled or caught by a kill while they do).
    "PURAS_RUNNER_SLOTS": "2",
}

TERMINAL = ("succeeded", "failed", "cancelled")
TERMINAL_EVENT_TYPES = {"job.succeeded", "job.failed", "job.cancelled"}
KINDS = (
    "ok",
    "slow",
    "fail",
    "timeout",
    "cancel_queued",
    "cancel_running",
    "held",
    "held_cancel",
)
CANCELLED_KINDS = ("cancel_queued", "cancel_running", "held_cancel")
HELD_KINDS = ("held", "held_cancel")
_WEIGHTS = {
    "ok": 52,
    "slow": 10,
    "fail": 12,
    "timeout": 6,
    "cancel_queued": 12,
    "cancel_running": 8,
    # To the project without credit (until the grant): held queued (J7), released by it.
    "held": 8,
    "held_cancel": 6,
}


def expected_work_result(inputs: dict[str, Any]) -> dict[str, Any]:
    """What the ``work`` skill returns for ``inputs`` (it is a pure function of them)."""
    tag = str(inputs["tag"])
    return {"tag": tag, "digest": hashlib.sha256(tag.encode()).hexdigest()[:16], "ms": inputs["ms"]}


# -- configuration and results ------------------------------------------------------------


@dataclass(frozen=True)
class ChaosConfig:
    jobs: int = 1000
    clients: int = 8
    projects: int = 2
    seed: int = 1
    duration_s: float = 90.0
    """The load is spread over this long; the kills fall inside it."""
    settle_s: float = 120.0
    """How long every job may take to become terminal once the load has ended."""
    idempotent_share: float = 0.5
    repeat_share: float = 0.1
    """Share of keyed submits sent once more after their answer (must get the same id)."""
    held_project: bool = True
    """One more project, without credit until ``grant_at`` of the load: its jobs wait
    queued (held, J7) and are released by the grant; some are cancelled while held."""
    grant_at: float = 0.55
    """When the held project gets its credit, as a share of ``duration_s``; held jobs are
    only planned in the first ``grant_at - 0.1`` of the load."""
    kills: tuple[str, ...] = (
        "gateway",
        "scheduler",
        "runner",
        "runner-2",
        "billing",
        "drive",
        "nats-server",
    )
    rounds: int = 1
    """How many times the whole ``kills`` sequence runs (spread over ``duration_s``)."""
    nats_down_s: float = 1.0
    """How long nats-server stays dead after its SIGKILL (an outage, not just a restart)."""
    env: dict[str, str] = field(default_factory=lambda: dict(CHAOS_ENV))
    work_dir: Path | None = None
    """Where the stack lives (default: a fresh temp dir, removed afterwards)."""
    keep_work_dir: bool = False
    """Keep the stack's work dir (its logs) afterwards; it is always kept after a problem."""
    request_timeout_s: float = 15.0
    retry_deadline_s: float = 90.0
    """How long one submit, cancel or read keeps retrying through outages."""


@dataclass
class Kill:
    target: str
    at_s: float
    """Seconds after the load started."""
    down_s: float = 0.0
    """From the SIGKILL until it answered ready again."""
    running_jobs: int = -1
    """Jobs the API listed as running just before the kill (-1: unknown)."""


@dataclass
class _Planned:
    i: int
    kind: str
    project: int
    skill: str
    inputs: dict[str, Any]
    key: str | None
    repeat: bool


@dataclass
class _Outcome:
    plan: _Planned
    job_id: str | None = None
    attempts: int = 0
    """POSTs sent for the submit (1 when the first answer was the final one)."""
    not_accepted: str | None = None
    """Why a submit without a key got no job id (it is never retried)."""
    repeat_id: str | None = None
    cancel_answer: str | None = None
    """``cancelled``/``running``/``queued`` (the JobOut status answered), or
    ``409 <status>`` when the job had already ended, or ``error ...``."""
    status_at_cancel: str | None = None
    """What the client saw just before it cancelled."""
    final: dict[str, Any] | None = None
    events: list[dict[str, Any]] | None = None


@dataclass
class ChaosReport:
    config: ChaosConfig
    started_at: str = ""
    machine: str = ""
    wall_s: float = 0.0
    load_s: float = 0.0
    settle_s: float | None = None
    """From the end of the load until every job was terminal (None: it never was)."""
    kills: list[Kill] = field(default_factory=list)
    planned: int = 0
    accepted: int = 0
    not_accepted: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_kind: dict[str, Counter[str]] = field(default_factory=dict)
    submit_retries: int = 0
    keyed_submits: int = 0
    keyed_resolved_by_retry: int = 0
    repeats_same_id: int = 0
    rerun_jobs: int = 0
    """Jobs started more than once (a runner lost mid-job, J11)."""
    max_attempts: int = 0
    runner_lost: int = 0
    held_released: int = 0
    """Jobs with a ``released`` event: held for credit, then dispatched by the grant."""
    grant_at_s: float | None = None
    cancelled_before_start: int = 0
    cancelled_while_running: int = 0
    """Cancelled jobs with no ``started`` event, and with one."""
    cancel_too_late: int = 0
    """Cancels answered 409 (the job had ended) or that lost the race to the end."""
    unaccepted_jobs_found: int = 0
    """Jobs that exist although their submit (without a key) got no 2xx."""
    admission_delays: list[tuple[float, str, float]] = field(default_factory=list)
    """``(seconds from accepted to its queued event, job id, seconds into the load)``."""
    log_terminal_events: int = 0
    log_duplicate_deliveries: int = 0
    """The same terminal envelope stored twice (same event id): harmless, counted."""
    rebuild: dict[str, str] = field(default_factory=dict)
    unexpected_exits: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def figures(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "machine": self.machine,
            "jobs_planned": self.planned,
            "clients": self.config.clients,
            "projects": self.config.projects,
            "seed": self.config.seed,
            "accepted": self.accepted,
            "not_accepted": dict(self.not_accepted),
            "by_status": dict(self.by_status),
            "by_kind": {k: dict(v) for k, v in self.by_kind.items()},
            "keyed_submits": self.keyed_submits,
            "submit_retries": self.submit_retries,
            "keyed_resolved_by_retry": self.keyed_resolved_by_retry,
            "repeats_same_id": self.repeats_same_id,
            "rerun_jobs": self.rerun_jobs,
            "max_attempts": self.max_attempts,
            "runner_lost": self.runner_lost,
            "held_released": self.held_released,
            "grant_at_s": None if self.grant_at_s is None else round(self.grant_at_s, 1),
            "cancelled_before_start": self.cancelled_before_start,
            "cancelled_while_running": self.cancelled_while_running,
            "cancel_too_late": self.cancel_too_late,
            "unaccepted_jobs_found": self.unaccepted_jobs_found,
            "admission_s": _admission_summary(self.admission_delays),
            "log_terminal_events": self.log_terminal_events,
            "log_duplicate_deliveries": self.log_duplicate_deliveries,
            "kills": [
                {
                    "target": k.target,
                    "at_s": round(k.at_s, 1),
                    "down_s": round(k.down_s, 2),
                    "running_jobs": k.running_jobs,
                }
                for k in self.kills
            ],
            "load_s": round(self.load_s, 1),
            "settle_s": None if self.settle_s is None else round(self.settle_s, 1),
            "wall_s": round(self.wall_s, 1),
            "rebuild": self.rebuild,
            "unexpected_exits": self.unexpected_exits,
            "problems": self.problems,
        }

    def render(self) -> str:
        f = self.figures()
        lines = [
            f"chaos run {f['started_at']} on {f['machine']}",
            f"  jobs planned {f['jobs_planned']} from {f['clients']} clients in "
            f"{f['projects']} projects"
            + (" + 1 without credit until the grant" if self.config.held_project else "")
            + f" (seed {f['seed']}); accepted {f['accepted']}; "
            f"not accepted {f['not_accepted'] or 0}",
            f"  final status: {f['by_status']}",
            "  by kind: " + "; ".join(f"{k} {v}" for k, v in f["by_kind"].items()),
            f"  keyed submits {f['keyed_submits']}, submits retried {f['submit_retries']}, "
            f"keyed submits settled by a retry {f['keyed_resolved_by_retry']}, "
            f"repeats answered with the same id {f['repeats_same_id']}",
            f"  jobs run again {f['rerun_jobs']} (max attempts {f['max_attempts']}), "
            f"runner lost {f['runner_lost']}, jobs of unaccepted submits "
            f"{f['unaccepted_jobs_found']}",
            f"  held for credit then released {f['held_released']} (credit granted at "
            f"{f['grant_at_s']}s); cancelled before start {f['cancelled_before_start']}, "
            "while running "
            f"{f['cancelled_while_running']}, cancels too late {f['cancel_too_late']}",
            f"  accepted -> queued event (s): {f['admission_s']}",
            f"  event log: {f['log_terminal_events']} terminal events, "
            f"{f['log_duplicate_deliveries']} duplicate deliveries",
            "  kills: "
            + ", ".join(
                f"{k['target']}@{k['at_s']}s (down {k['down_s']}s, {k['running_jobs']} running)"
                for k in f["kills"]
            ),
            f"  load {f['load_s']}s, settle {f['settle_s']}s, wall {f['wall_s']}s",
            f"  rebuild: {f['rebuild']}",
        ]
        if self.unexpected_exits:
            lines.append("  services that exited on their own: " + ", ".join(self.unexpected_exits))
        if self.problems:
            lines.append(f"PROBLEMS ({len(self.problems)}):")
            lines += [f"- {p}" for p in self.problems[:60]]
            if len(self.problems) > 60:
                lines.append(f"- ... and {len(self.problems) - 60} more")
        else:
            lines.append("result: OK (nothing lost, stuck, duplicated or run to two results)")
        return "\n".join(lines)


def _admission_summary(delays: list[tuple[float, str, float]]) -> dict[str, Any]:
    if not delays:
        return {}
    d = sorted(delays)
    return {
        "p50": round(d[len(d) // 2][0], 3),
        "p99": round(d[min(len(d) - 1, int(len(d) * 0.99))][0], 3),
        "max": round(d[-1][0], 3),
        "slowest": [
            {"job": j, "delay_s": round(x, 2), "accepted_at_s": round(at, 1)}
            for x, j, at in d[::-1][:3]
        ],
    }


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def machine_description() -> str:
    cpus = os.cpu_count() or 0
    try:
        load = f", load avg {os.getloadavg()[0]:.2f}"
    except OSError:
        load = ""
    py = platform.python_version()
    return f"{platform.system()} {platform.machine()}, {cpus} CPUs{load}, Python {py}"


# -- HTTP with retries ---------------------------------------------------------------------


def _retryable(r: httpx.Response) -> bool:
    return r.status_code >= 500


class _Client:
    def __init__(self, base: str, key: str, cfg: ChaosConfig, stop: threading.Event) -> None:
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=cfg.request_timeout_s
        )
        self.cfg = cfg
        self.stop = stop

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One request, retried through transport errors and 5xx until the deadline
        (only for requests that are safe to repeat: reads, cancels, keyed submits)."""
        deadline = time.monotonic() + self.cfg.retry_deadline_s
        delay = 0.1
        last = ""
        while True:
            try:
                r = self.http.request(method, path, **kw)
                if not _retryable(r):
                    return r
                last = f"{r.status_code} {r.text[:200]}"
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path}: still failing after retries ({last})")
            # Backing off while a process is down; the answer is what we wait for.
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


# -- the load -----------------------------------------------------------------------------


def _plan(cfg: ChaosConfig, run_id: str) -> list[_Planned]:
    rng = random.Random(cfg.seed)
    every = list(_WEIGHTS)
    unheld = [k for k in every if k not in HELD_KINDS]
    held_until = int(cfg.jobs * max(0.0, cfg.grant_at - 0.1)) if cfg.held_project else 0
    out = []
    for i in range(cfg.jobs):
        kinds = every if i < held_until else unheld
        kind = rng.choices(kinds, [_WEIGHTS[k] for k in kinds])[0]
        tag = f"{run_id}-{i}"
        if kind == "held":
            skill, inputs = "work", {"tag": tag, "ms": rng.randint(0, 100)}
        elif kind == "ok":
            skill, inputs = "work", {"tag": tag, "ms": rng.randint(0, 150)}
        elif kind == "slow":
            skill, inputs = "work", {"tag": tag, "ms": rng.randint(500, 2000)}
        elif kind == "fail":
            skill, inputs = "fail", {"tag": tag}
        elif kind == "timeout":
            skill, inputs = "hang", {"tag": tag}
        else:
            skill, inputs = "work", {"tag": tag, "ms": rng.randint(3000, 5000)}
        keyed = rng.random() < cfg.idempotent_share
        out.append(
            _Planned(
                i=i,
                kind=kind,
                project=cfg.projects if kind in HELD_KINDS else i % cfg.projects,
                skill=skill,
                inputs=inputs,
                key=f"chaos-{tag}" if keyed else None,
                repeat=keyed and rng.random() < cfg.repeat_share,
            )
        )
    return out


def _submit(c: _Client, o: _Outcome) -> None:
    p = o.plan
    body = {"skill": p.skill, "inputs": p.inputs}
    if p.key is None:
        o.attempts = 1
        try:
            r = c.http.post("/v1/jobs", json=body)
        except httpx.ConnectError as exc:
            o.not_accepted = f"refused ({type(exc).__name__})"
            return
        except httpx.TransportError as exc:
            o.not_accepted = f"unknown ({type(exc).__name__})"
            return
        if r.status_code == 200:
            o.job_id = r.json()["id"]
        else:
            o.not_accepted = f"{r.status_code} {_code(r)}"
        return
    headers = {"Idempotency-Key": p.key}
    deadline = time.monotonic() + c.cfg.retry_deadline_s
    delay = 0.1
    while True:
        o.attempts += 1
        last = ""
        try:
            r = c.http.post("/v1/jobs", json=body, headers=headers)
            if r.status_code == 200:
                o.job_id = r.json()["id"]
                break
            if not _retryable(r):
                o.not_accepted = f"{r.status_code} {_code(r)}: {r.text[:300]}"
                return
            last = f"{r.status_code} {_code(r)}"
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}"
        if time.monotonic() > deadline:
            o.not_accepted = f"keyed submit still failing after {o.attempts} tries ({last})"
            return
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
    if p.repeat:
        r = c.call("POST", "/v1/jobs", json=body, headers=headers)
        o.repeat_id = r.json().get("id") if r.status_code == 200 else f"{r.status_code} {r.text}"


def _code(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return ""


def _cancel(c: _Client, o: _Outcome) -> None:
    assert o.job_id is not None
    if o.plan.kind == "cancel_running":
        # Until a runner has it (bounded): then the cancel must stop a running process.
        deadline = time.monotonic() + 15
        status = "queued"
        while time.monotonic() < deadline and not c.stop.is_set():
            r = c.call("GET", f"/v1/jobs/{o.job_id}")
            status = r.json().get("status", "?") if r.status_code == 200 else str(r.status_code)
            if status != "queued":
                break
            time.sleep(0.1)
        o.status_at_cancel = status
    else:
        o.status_at_cancel = "just submitted"
    try:
        r = c.call("POST", f"/v1/jobs/{o.job_id}/cancel")
    except RuntimeError as exc:
        o.cancel_answer = f"error {exc}"
        return
    if r.status_code == 200:
        o.cancel_answer = str(r.json()["status"])
    elif r.status_code == 409:
        o.cancel_answer = f"409 {r.json()['error'].get('job_status', '?')}"
    elif r.status_code == 404:
        o.cancel_answer = f"404 {_code(r)}"
    else:
        o.cancel_answer = f"error {r.status_code} {r.text[:200]}"


def _client_loop(
    k: int,
    mine: list[_Outcome],
    bases: Callable[[int], tuple[str, str]],
    cfg: ChaosConfig,
    t0: float,
    stop: threading.Event,
    errors: list[str],
) -> None:
    clients: dict[int, _Client] = {}
    try:
        interval = cfg.duration_s / max(1, len(mine))
        offset = interval * k / max(1, cfg.clients)
        for j, o in enumerate(mine):
            due = t0 + offset + j * interval
            # Pacing, not waiting for a condition: the load is spread over duration_s.
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            c = clients.get(o.plan.project)
            if c is None:
                base, key = bases(o.plan.project)
                c = clients[o.plan.project] = _Client(base, key, cfg, stop)
            _submit(c, o)
            if o.job_id is not None and o.plan.kind in CANCELLED_KINDS:
                _cancel(c, o)
    except Exception as exc:
        errors.append(f"client {k}: {type(exc).__name__}: {exc}")
    finally:
        for c in clients.values():
            c.close()


# -- kills --------------------------------------------------------------------------------


def _running_jobs(admin_reads: list[_Client]) -> int:
    n = 0
    try:
        for c in admin_reads:
            r = c.http.get("/v1/jobs", params={"status": "running", "limit": 200}, timeout=3)
            if r.status_code != 200:
                return -1
            n += len(r.json()["jobs"])
    except httpx.TransportError:
        return -1
    return n


def _kill_and_restart(stack: Stack, target: str, nats_down_s: float) -> None:
    if target == "nats-server":
        nats = stack.nats
        if nats is None:
            raise StackError("the stack has no nats-server")
        nats.stop(kill=True)  # SIGKILL; the port and the store dir are kept
        # The outage itself: every service and client sees NATS gone for this long.
        time.sleep(nats_down_s)
        nats.start()
        return
    stack.kill_service(target, signal.SIGKILL)
    stack.start_service(target)


def _restart_exited(stack: Stack, report: ChaosReport, when: str) -> None:
    """A service that exited on its own is a finding: note it with its log, start it again
    so the rest of the run still says something."""
    while True:
        name = stack.wait_for_exit(timeout=0)
        if name is None:
            return
        report.unexpected_exits.append(name)
        report.problems.append(f"{name} exited on its own ({when}): {stack.describe_exit(name)}")
        if name in ("nats-server", "postgres"):
            raise StackError(f"{name} died; cannot go on: {stack.describe_exit(name)}")
        stack.start_service(name)


def _kill_loop(
    stack: Stack,
    cfg: ChaosConfig,
    t0: float,
    stop: threading.Event,
    report: ChaosReport,
    reads: list[_Client],
    errors: list[str],
) -> None:
    try:
        targets = list(cfg.kills) * max(1, cfg.rounds)
        gap = cfg.duration_s / (len(targets) + 1)
        for n, target in enumerate(targets, start=1):
            if stop.wait(max(0.0, t0 + n * gap - time.monotonic())):
                return
            _restart_exited(stack, report, f"before the kill of {target}")
            running = _running_jobs(reads)
            if target.startswith("runner"):
                # A runner is killed with work in flight (bounded: the load keeps some).
                until = time.monotonic() + 5
                while running < 2 and time.monotonic() < until and not stop.is_set():
                    time.sleep(0.1)
                    running = _running_jobs(reads)
            kill = Kill(target=target, at_s=time.monotonic() - t0, running_jobs=running)
            k0 = time.monotonic()
            _kill_and_restart(stack, target, cfg.nats_down_s)
            kill.down_s = time.monotonic() - k0
            report.kills.append(kill)
    except Exception as exc:
        errors.append(f"kill loop: {type(exc).__name__}: {exc}")


# -- after the load ------------------------------------------------------------------------


def _list_all(c: _Client) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = c.call("GET", "/v1/jobs", params=params)
        if r.status_code != 200:
            raise RuntimeError(f"GET /v1/jobs answered {r.status_code}: {r.text[:300]}")
        page = r.json()
        for j in page["jobs"]:
            jobs[j["id"]] = j
        cursor = page.get("next_cursor")
        if not cursor:
            return jobs


def _settle(
    clients: list[_Client], accepted: set[str], deadline: float
) -> tuple[bool, dict[str, dict[str, Any]]]:
    """Poll the job lists (bounded) until every listed and every accepted job is terminal."""
    while True:
        listed: dict[str, dict[str, Any]] = {}
        for c in clients:
            listed.update(_list_all(c))
        open_ = [j for j in listed.values() if j["status"] not in TERMINAL]
        if not open_ and accepted <= listed.keys():
            return True, listed
        if time.monotonic() > deadline:
            return False, listed
        time.sleep(0.5)


async def _scan_log(
    nats_url: str, jobs: list[tuple[str, str]]
) -> dict[str, list[tuple[str, str, Any]]]:
    """Terminal events of each ``(project id, job id)`` straight from the event log (every
    message on the job's subject, by direct gets): ``{job id: [(event id, type, result)]}``."""
    from puras_common.bus import connect
    from puras_common.events.base import decode_envelope, decode_event
    from puras_common.events.subjects import AGG_JOB, event_subject
    from puras_common.events.types import JobSucceeded

    bus = await connect(nats_url, name="puras-chaos-scan")
    out: dict[str, list[tuple[str, str, Any]]] = {}
    try:
        for project_id, job_id in jobs:
            found = out.setdefault(job_id, [])
            async for _seq, data in bus.subject_messages(
                event_subject(project_id, AGG_JOB, job_id)
            ):
                env = decode_envelope(data)
                if env.type in TERMINAL_EVENT_TYPES:
                    ev = decode_event(env)
                    result = ev.result if isinstance(ev, JobSucceeded) else None
                    found.append((env.id, env.type, result))
    finally:
        await bus.close()
    return out


async def _rebuild_all(nats_url: str, dsn: str) -> dict[str, tuple[bool, str]]:
    from puras_cli.commands.admin_rebuild import all_projections
    from puras_common.bus import connect
    from puras_common.projection.rebuild import rebuild_and_compare

    bus = await connect(nats_url, name="puras-chaos-rebuild")
    try:
        out = {}
        for name, proj in sorted(all_projections().items()):
            report = await rebuild_and_compare(dsn, bus.js, proj())
            out[name] = (report.equal, report.render())
        return out
    finally:
        await bus.close()


def _check_job(o: _Outcome, report: ChaosReport, t0_wall: float) -> None:
    p = o.plan
    job = o.final
    assert job is not None
    assert o.job_id is not None
    status = job["status"]
    report.by_status[status] += 1
    report.by_kind.setdefault(p.kind, Counter())[status] += 1
    events = o.events or []
    starts = [e for e in events if e["type"] == "started"]
    terminals = [e for e in events if e["type"] in TERMINAL]
    if len(starts) > 1:
        report.rerun_jobs += 1
    if any(e["type"] == "released" for e in events):
        report.held_released += 1
    queued = next((e for e in events if e["type"] == "queued"), None)
    if queued is not None and job.get("created_at") and not queued["payload"].get("held"):
        created = _ts(job["created_at"])
        report.admission_delays.append(
            (_ts(queued["at"]) - created, str(o.job_id), created - t0_wall)
        )
    if status == "cancelled":
        if starts:
            report.cancelled_while_running += 1
        else:
            report.cancelled_before_start += 1
    report.max_attempts = max(report.max_attempts, int(job.get("attempts") or 0))

    created_s = _ts(job["created_at"]) - t0_wall if job.get("created_at") else None
    if created_s is None:
        kills_at = _kills_near(report.kills)
    else:
        near = [k for k in report.kills if created_s - 15 <= k.at_s <= created_s + 15]
        kills_at = f"accepted at {created_s:.1f}s; kills near it: {_kills_near(near)}"

    def bad(what: str) -> None:
        # (type, attempt, seconds into the load): lined up with the kills' times.
        evs = [
            (e["type"], e["payload"].get("attempt"), round(_ts(e["at"]) - t0_wall, 2))
            for e in events
            if e["type"] != "log"
        ]
        report.problems.append(
            f"job {o.job_id} ({p.kind}, {p.skill} {json.dumps(p.inputs)}, project {p.project}, "
            f"key {p.key}): {what}; status {status}, error {str(job.get('error'))[:160]!r}, "
            f"attempts {job.get('attempts')}, cancel {o.cancel_answer} (saw {o.status_at_cancel}); "
            f"events {evs}; kills {kills_at}"
        )

    if len(terminals) != 1:
        bad(f"{len(terminals)} terminal events over the API")
    if status not in TERMINAL:
        bad("not terminal")
        return
    error = str(job.get("error") or "")
    if (
        status == "succeeded"
        and p.skill == "work"
        and job.get("result") != expected_work_result(p.inputs)
    ):
        bad(f"result {job.get('result')} is not {expected_work_result(p.inputs)}")
    lost = status == "failed" and error == "runner lost"
    if lost:
        report.runner_lost += 1
    if p.kind in ("ok", "slow", "held"):
        if status != "succeeded" and not lost:
            bad("a work job that did not succeed")
    elif p.kind == "fail":
        if not (status == "failed" and (error.startswith("ValueError: chaos failure") or lost)):
            bad("a failing job that did not fail with its own error")
    elif p.kind == "timeout":
        if not (status == "failed" and (error.startswith("timed out after") or lost)):
            bad("a hanging job that did not time out")
    else:
        answer = o.cancel_answer or ""
        if answer.startswith("404"):
            bad(f"the cancel of this accepted job answered {answer} (J4: never a 404)")
        elif answer.startswith("error"):
            bad("the cancel never got an answer")
        elif answer == "cancelled" and status != "cancelled":
            bad("the cancel answered cancelled but the job ended otherwise")
        elif answer.startswith("409"):
            report.cancel_too_late += 1
            if status == "cancelled" or answer != f"409 {status}":
                bad("the cancel answered 409 but the job ended otherwise")
        elif status != "cancelled":
            # Accepted while running, but the job ended first: allowed, counted.
            report.cancel_too_late += 1
            if status != "succeeded" and not lost:
                bad("a cancelled job that neither was cancelled nor succeeded")


def _kills_near(kills: list[Kill]) -> str:
    return ", ".join(f"{k.target}@{k.at_s:.1f}s" for k in kills) or "none"


# -- the run ------------------------------------------------------------------------------


@contextlib.contextmanager
def _stack(
    cfg: ChaosConfig, progress: Callable[[str], None], failed: Callable[[], bool]
) -> Iterator[Stack]:
    own = cfg.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="puras-chaos-")) if own else Path(str(cfg.work_dir))
    stack = Stack(work, env=cfg.env, runners=2, fsync=False, progress=progress)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        if own and not cfg.keep_work_dir and not failed():
            for pids in work.rglob("stack.pids"):
                claim_work_dir(pids.parent)
            shutil.rmtree(work, ignore_errors=True)
        else:
            progress(f"stack work dir (logs) kept: {work}")


def _deploy(base: str, key: str, bundle: bytes, *, warm: bool) -> None:
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as http:
        r = http.post(
            "/v1/deployments",
            files={"bundle": ("bundle.zip", bundle, "application/zip")},
            data={"notes": "chaos"},
        )
        if r.status_code != 200:
            raise RuntimeError(f"deploying the chaos project: {r.status_code} {r.text}")
        if not warm:
            return
        # One job per project before the clock starts: the runners' templates are warm.
        r = http.post(
            "/v1/jobs",
            params={"wait": "true", "timeout": 60},
            json={"skill": "work", "inputs": {"tag": "warm", "ms": 0}},
        )
        if r.status_code != 200 or r.json()["status"] != "succeeded":
            raise RuntimeError(f"the warm-up job did not succeed: {r.text[:500]}")


def _grant_loop(
    stack: Stack,
    project_id: str,
    at: float,
    stop: threading.Event,
    report: ChaosReport,
    t0: float,
    errors: list[str],
) -> None:
    """Credit for the held project at ``at``, retried through outages (a repeated grant
    only adds credit)."""
    if stop.wait(max(0.0, at - time.monotonic())):
        return
    deadline = time.monotonic() + 60
    while True:
        try:
            with stack.client() as admin:
                api.grant_credits(admin, project_id, micros=api.usd_to_micros(100))
            report.grant_at_s = time.monotonic() - t0
            return
        except PurasError as exc:
            if time.monotonic() > deadline:
                errors.append(f"granting credit to the held project failed: {exc}")
                return
        time.sleep(0.5)


def run_chaos(cfg: ChaosConfig, progress: Callable[[str], None] | None = None) -> ChaosReport:
    say = progress or (lambda _m: None)
    report = ChaosReport(
        config=cfg,
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        machine=machine_description(),
    )
    wall0 = time.monotonic()
    run_id = hashlib.sha256(f"{time.time_ns()}-{cfg.seed}".encode()).hexdigest()[:8]
    plan = _plan(cfg, run_id)
    report.planned = len(plan)
    bundle = pack_project(PROJECT_DIR).data
    with _stack(cfg, say, lambda: bool(report.problems)) as stack:
        keys: list[str] = []
        for n in range(cfg.projects):
            project = stack.bootstrap_project(name=f"chaos-{run_id}-{n}", usd=100)
            keys.append(project.api_key)
            _deploy(stack.api_base, project.api_key, bundle, warm=True)
        held_id = ""
        if cfg.held_project:
            with stack.client() as admin:
                held_id = api.create_project(admin, f"chaos-{run_id}-held")
                keys.append(str(api.create_project_key(admin, held_id)["key"]))
            _deploy(stack.api_base, keys[-1], bundle, warm=False)
        say(
            f"stack up, {len(keys)} projects deployed"
            + (" (the last without credit)" if held_id else "")
            + f"; load of {len(plan)} jobs starts"
        )

        outcomes = [_Outcome(plan=p) for p in plan]
        shares: list[list[_Outcome]] = [outcomes[k :: cfg.clients] for k in range(cfg.clients)]
        stop = threading.Event()
        errors: list[str] = []
        base = stack.api_base
        reads = [_Client(base, k, cfg, stop) for k in keys]
        t0 = time.monotonic() + 0.2
        t0_wall = time.time() + 0.2
        threads = [
            threading.Thread(
                target=_client_loop,
                args=(k, shares[k], lambda n: (base, keys[n]), cfg, t0, stop, errors),
                name=f"chaos-client-{k}",
                daemon=True,
            )
            for k in range(cfg.clients)
        ]
        killer = threading.Thread(
            target=_kill_loop,
            args=(stack, cfg, t0, stop, report, reads, errors),
            name="chaos-kills",
            daemon=True,
        )
        workers = [*threads, killer]
        if held_id:
            workers.append(
                threading.Thread(
                    target=_grant_loop,
                    args=(
                        stack,
                        held_id,
                        t0 + cfg.grant_at * cfg.duration_s,
                        stop,
                        report,
                        t0,
                        errors,
                    ),
                    name="chaos-grant",
                    daemon=True,
                )
            )
        for t in workers:
            t.start()
        hard_stop = t0 + cfg.duration_s + cfg.retry_deadline_s + 120
        try:
            for t in workers:
                t.join(timeout=max(0.0, hard_stop - time.monotonic()))
        finally:
            stop.set()
        if any(t.is_alive() for t in workers):
            errors.append("the load or the kills did not finish in time")
        report.load_s = time.monotonic() - t0
        report.problems += errors
        _restart_exited(stack, report, "during the load")
        say(
            f"load done in {report.load_s:.1f}s, kills: {_kills_near(report.kills)}; "
            "waiting for every job to end"
        )

        accepted = {o.job_id for o in outcomes if o.job_id is not None}
        report.accepted = len(accepted)
        settle0 = time.monotonic()
        settled, listed = _settle(reads, accepted, settle0 + cfg.settle_s)
        if settled:
            report.settle_s = time.monotonic() - settle0
        else:
            open_ = [j for j in listed.values() if j["status"] not in TERMINAL]
            report.problems.append(
                f"not settled after {cfg.settle_s:.0f}s: {len(open_)} listed jobs still open "
                f"({Counter(j['status'] for j in open_)}), "
                f"{len(accepted - listed.keys())} accepted jobs not listed"
            )
        say("checking jobs, events, the event log and the projections")
        _check_all(stack, outcomes, listed, reads, report, t0_wall)
        for c in reads:
            c.close()
        _restart_exited(stack, report, "after the load")
    report.wall_s = time.monotonic() - wall0
    return report


def _check_all(
    stack: Stack,
    outcomes: list[_Outcome],
    listed: dict[str, dict[str, Any]],
    reads: list[_Client],
    report: ChaosReport,
    t0_wall: float,
) -> None:
    kills_at = _kills_near(report.kills)
    by_tag: dict[str, list[str]] = {}
    for j in listed.values():
        tag = (j.get("inputs") or {}).get("tag")
        if isinstance(tag, str) and tag != "warm":
            by_tag.setdefault(tag, []).append(j["id"])

    def fetch(o: _Outcome) -> None:
        assert o.job_id is not None
        c = reads[o.plan.project]
        o.final = listed.get(o.job_id)
        if o.final is None:
            r = c.call("GET", f"/v1/jobs/{o.job_id}")
            if r.status_code != 200:
                return
            o.final = r.json()
            report.problems.append(
                f"job {o.job_id} ({o.plan.kind}) answers GET but is missing from the job list"
            )
        r = c.call("GET", f"/v1/jobs/{o.job_id}/events")
        o.events = r.json()["events"] if r.status_code == 200 else []

    accepted = [o for o in outcomes if o.job_id is not None]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(fetch, accepted))

    for o in outcomes:
        p = o.plan
        tag = str(p.inputs["tag"])
        ids = by_tag.get(tag, [])
        if p.key is not None:
            report.keyed_submits += 1
        if o.attempts > 1:
            report.submit_retries += 1
            if o.job_id is not None:
                report.keyed_resolved_by_retry += 1
        if o.job_id is None:
            reason = o.not_accepted or "?"
            report.not_accepted[reason.split(" ", 1)[0]] += 1
            if p.key is not None or not reason.startswith(("refused", "unknown", "5")):
                report.problems.append(
                    f"submit {p.i} ({p.kind}, key {p.key}) not accepted: {reason}"
                )
            if ids:
                report.unaccepted_jobs_found += 1
            if len(ids) > 1:
                report.problems.append(f"tag {tag}: {len(ids)} jobs {ids} from one submit")
            continue
        if len(ids) > 1 or (ids and ids != [o.job_id]):
            report.problems.append(
                f"tag {tag} (key {p.key}, {o.attempts} POSTs): jobs {ids}, accepted id {o.job_id}"
            )
        if p.repeat:
            if o.repeat_id == o.job_id:
                report.repeats_same_id += 1
            else:
                report.problems.append(
                    f"key {p.key}: the repeat answered {o.repeat_id}, the original {o.job_id}"
                )
        if o.final is None:
            report.problems.append(f"job {o.job_id} ({p.kind}, key {p.key}) LOST: 404 by id")
            continue
        _check_job(o, report, t0_wall)

    try:
        log = asyncio.run(
            _scan_log(
                stack.nats_url,
                [(o.final["project_id"], o.job_id) for o in accepted if o.final and o.job_id],
            )
        )
    except Exception as exc:
        report.problems.append(f"event log scan failed: {type(exc).__name__}: {exc}")
    else:
        for o in accepted:
            assert o.job_id is not None
            found = log.get(o.job_id, [])
            report.log_terminal_events += len(found)
            distinct = {eid for eid, _, _ in found}
            report.log_duplicate_deliveries += len(found) - len(distinct)
            if len(distinct) != 1:
                report.problems.append(
                    f"job {o.job_id} ({o.plan.kind}): {len(distinct)} distinct terminal events "
                    f"in the log: {found}; kills {kills_at}"
                )
            want = expected_work_result(o.plan.inputs) if o.plan.skill == "work" else None
            for eid, type_, result in found:
                if type_ == "job.succeeded" and want is not None and result != want:
                    report.problems.append(
                        f"job {o.job_id}: the log's {type_} {eid} has result {result}, not {want}"
                    )

    try:
        rebuilt = asyncio.run(_rebuild_all(stack.nats_url, stack.database_url))
    except Exception as exc:
        report.problems.append(f"rebuild failed: {type(exc).__name__}: {exc}")
    else:
        for name, (equal, text) in rebuilt.items():
            report.rebuild[name] = "EQUAL" if equal else "NOT EQUAL"
            if not equal:
                report.problems.append(f"rebuild of {name} differs:\n{text}")
