"""Our side: a dev stack in a temp dir, the bench project deployed, and what to call.

The stack is the one ``puras dev up`` runs (embedded Postgres with fsync on, nats-server,
the five services), so the figures are what a user gets on this machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec

from puras_bench.load import Call, Sample
from puras_bench.stats import latency_summary, pct
from puras_bundle import pack_project
from puras_cli.devstack import Stack
from puras_cli.devstack.stack import claim_work_dir
from puras_common.bus import EventFollower, connect
from puras_common.events.base import decode_envelope
from puras_common.events.subjects import AGG_JOB, aggregate_filter, submit_filter
from puras_common.events.types import TERMINAL_EVENT_TYPES

__all__ = [
    "BENCH_PROJECT",
    "OurStack",
    "TerminalWatcher",
    "WireObserver",
    "healthz_call",
    "hop_breakdown",
    "noop_call",
    "started_stack",
]

BENCH_PROJECT = Path(__file__).resolve().parent.parent / "project"
"""The bench project: one deterministic skill, ``noop``, returning its inputs."""


@dataclass
class OurStack:
    stack: Stack
    work_dir: Path
    project_id: str
    api_key: str
    deployment_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def pids(self) -> dict[str, int]:
        """Every process of the stack that uses CPU for a job, by name."""
        out = dict(self.stack.service_pids())
        if self.stack.nats is not None and self.stack.nats.proc is not None:
            out["nats-server"] = self.stack.nats.proc.pid
        if self.stack.postgres is not None and self.stack.postgres.proc is not None:
            out["postgres"] = self.stack.postgres.proc.pid
        return out


@contextlib.contextmanager
def started_stack(
    env: dict[str, str],
    log: Callable[[str], None],
    keep_dir: bool = False,
    gateway_workers: int = 1,
    schedulers: int = 1,
) -> Iterator[OurStack]:
    """A started stack with a funded project and the bench project deployed; everything
    it started is stopped on the way out (also on an error or Ctrl-C). ``gateway_workers``
    HTTP processes of the gateway share its port; ``schedulers`` scheduler processes
    share its durable command consumer (replicas, as on Kubernetes)."""
    work = Path(tempfile.mkdtemp(prefix="puras-bench-"))
    stack = Stack(
        work,
        env=env,
        runners=1,
        fsync=True,
        gateway_workers=gateway_workers,
        progress=lambda m: log(f"stack: {m}"),
    )
    try:
        t0 = time.monotonic()
        stack.start()
        for _ in range(schedulers - 1):
            log(f"stack: started {stack.add_replica('scheduler')}")
        log(f"stack up in {time.monotonic() - t0:.1f}s at {stack.api_base} (work dir {work})")
        project = stack.bootstrap_project(name="bench", usd=1000)
        with httpx.Client(
            base_url=stack.api_base,
            headers={"Authorization": f"Bearer {project.api_key}"},
            timeout=60,
        ) as http:
            bundle = pack_project(BENCH_PROJECT).data
            r = http.post(
                "/v1/deployments",
                files={"bundle": ("bench.zip", bundle, "application/zip")},
                data={"notes": "bench"},
            )
            if r.status_code != 200:
                raise RuntimeError(f"deploying the bench project failed: {r.status_code} {r.text}")
            dep = r.json()["id"]
        yield OurStack(stack, work, project.project_id, project.api_key, dep)
    finally:
        t0 = time.monotonic()
        stack.stop()
        # A stack started by this one (none today) would have left its own pids file.
        for pids in work.rglob("stack.pids"):
            claim_work_dir(pids.parent)
        if not keep_dir:
            shutil.rmtree(work, ignore_errors=True)
        log(f"stack stopped ({time.monotonic() - t0:.1f}s)")


def noop_call(ours: OurStack, *, wait: bool) -> Call:
    """``POST /v1/jobs`` of the no-op skill with ``{"x": i}`` (``wait=true``: answered when
    the job has ended, and checked to have succeeded with ``{"x": i}``)."""

    def body(i: int) -> dict[str, Any]:
        return {"skill": "noop", "inputs": {"x": i}}

    def check_done(i: int, out: Any) -> None:
        if out.get("status") != "succeeded" or out.get("result") != {"x": i}:
            raise RuntimeError(f"job {out.get('id')} ended {out.get('status')}: {out}")

    def check_queued(i: int, out: Any) -> None:
        if out.get("status") not in ("queued", "running", "succeeded") or "id" not in out:
            raise RuntimeError(f"submit answered {out}")

    return Call(
        base_url=ours.stack.api_base,
        path="/v1/jobs",
        params={"wait": "true", "timeout": "60"} if wait else {},
        body=body,
        check=check_done if wait else check_queued,
        headers=ours.auth,
    )


def healthz_call(ours: OurStack) -> Call:
    """``GET /healthz``: the gateway's HTTP stack with no job behind it."""

    def check(_i: int, out: Any) -> None:
        if out.get("status") != "ok":
            raise RuntimeError(f"/healthz answered {out}")

    return Call(
        base_url=ours.stack.api_base, path="/healthz", method="GET", body=lambda i: {}, check=check
    )


class TerminalWatcher:
    """Follows the project's job events on the log (a JetStream ordered consumer, from
    the stream's end when started) and records when each job's terminal event arrives.

    Completion detection for async submits without polling: :meth:`wait_for` blocks on a
    condition that each arriving terminal event notifies.
    """

    def __init__(self, nats_url: str, project_id: str) -> None:
        self._url = nats_url
        self._filter = aggregate_filter(AGG_JOB, project_id)
        self._cond = threading.Condition()
        self.done: dict[str, tuple[float, str, datetime]] = {}
        """job id -> (perf_counter when seen, event type, the event's own timestamp)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="bench-watcher", daemon=True)

    def start(self) -> TerminalWatcher:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise RuntimeError(f"event watcher failed: {self._error!r}") from self._error
        if not self._ready.is_set():
            raise RuntimeError("event watcher did not start in 30s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def wait_for(self, ids: Iterable[str], timeout: float) -> float:
        """Block until every id has ended; the perf_counter time of the last one."""
        want = set(ids)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                missing = want.difference(self.done)
                if not missing:
                    return max(self.done[i][0] for i in want)
                if self._error is not None:
                    raise RuntimeError(f"event watcher failed: {self._error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(missing)} job(s) not ended after {timeout:.0f}s")
                self._cond.wait(left)

    def _main(self) -> None:
        try:
            asyncio.run(self._follow())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            with self._cond:
                self._cond.notify_all()

    async def _follow(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        bus = await connect(self._url, name="bench-watcher")
        try:
            start = await bus.stream_last_seq() + 1
            follower = EventFollower(bus.js, [self._filter], start_seq=start)
            await follower.start()
            self._ready.set()
            stopping = asyncio.create_task(self._stop.wait())
            try:
                while not self._stop.is_set():
                    batch_task = asyncio.create_task(follower.next_batch(1000))
                    await asyncio.wait({batch_task, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if not batch_task.done():
                        batch_task.cancel()
                        break
                    now = time.perf_counter()
                    ended = []
                    for raw in batch_task.result():
                        env = decode_envelope(raw.data)
                        if env.type in TERMINAL_EVENT_TYPES:
                            ended.append((env.aggregate_id, (now, env.type, env.at)))
                    if ended:
                        with self._cond:
                            self.done.update(ended)
                            self._cond.notify_all()
            finally:
                stopping.cancel()
                await follower.stop()
        finally:
            await bus.close()


class WireObserver:
    """Timestamps (wall clock) at which each job's messages cross NATS, seen by a plain
    subscriber of their subjects: the submit command, the work item and the job's events.

    JetStream messages are delivered to core subscribers of their subject as well, so
    this sees them when the server routes them, as the gateway's own job subscription
    does. It consumes nothing and acks nothing; it only times (for :func:`hop_breakdown`).
    """

    def __init__(self, nats_url: str, project_id: str) -> None:
        self._url = nats_url
        # Submits are on ``cmd.scheduler.submit.<project>.<job>``: this project's only.
        self._subjects = (
            submit_filter(project_id),
            "work.>",
            aggregate_filter(AGG_JOB, project_id),
        )
        self.seen: dict[str, dict[str, float]] = {}
        """job id -> {"cmd" | "work" | "job.queued" | ...: wall-clock time received}."""
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="bench-wire", daemon=True)

    def start(self) -> WireObserver:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"wire observer did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _main(self) -> None:
        try:
            asyncio.run(self._observe())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _observe(self) -> None:
        import nats
        from nats.aio.msg import Msg

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        nc = await nats.connect(self._url, name="bench-wire")
        get_job = msgspec.json.Decoder(_JobRef).decode

        async def on_msg(msg: Msg) -> None:
            now = time.time()
            subject = msg.subject
            if subject.startswith("ev."):
                job_id = subject.rsplit(".", 1)[1]
                kind = msgspec.json.decode(msg.data, type=_EnvelopeType).type
            else:
                try:
                    job_id = get_job(msg.data).job_id
                except msgspec.MsgspecError:
                    return
                kind = "cmd" if subject.startswith("cmd.") else "work"
            with self._lock:
                self.seen.setdefault(job_id, {}).setdefault(kind, now)

        try:
            for subj in self._subjects:
                await nc.subscribe(subj, cb=on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
            await nc.flush()
            self._ready.set()
            await self._stop.wait()
        finally:
            await nc.close()


class _JobRef(msgspec.Struct):
    job_id: str


class _EnvelopeType(msgspec.Struct):
    type: str


def _ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


# Points of one sync job's life, in order: (name, where the time comes from).
POINTS: tuple[tuple[str, str], ...] = (
    ("sent", "client: request written"),
    ("accepted", "gateway: job's created_at"),
    ("cmd_wire", "wire: submit command routed by NATS"),
    ("queued", "scheduler: job.queued stamped"),
    ("queued_wire", "wire: job.queued routed"),
    ("work_wire", "wire: work item routed"),
    ("began", "runner: attempt's started_at"),
    ("started", "runner: job.started stamped"),
    ("finished", "runner: job's finished_at"),
    ("terminal", "runner: job.succeeded stamped"),
    ("terminal_wire", "wire: job.succeeded routed"),
    ("answered", "client: response read"),
)

HOPS: dict[str, str] = {
    "sent>accepted": "gateway: HTTP request in, auth, body decode, input schema check",
    "accepted>cmd_wire": "gateway: subscribe to the job's subject, publish the submit command",
    "cmd_wire>queued": "JetStream stores the command, delivers it to the scheduler's pull; "
    "scheduler decodes and admits",
    "queued>queued_wire": "scheduler: publish job.queued",
    "queued_wire>work_wire": "scheduler: wait for job.queued's ack, publish the work item",
    "work_wire>began": "JetStream stores the work item, delivers it to the runner; runner "
    "decodes, opens its span, starts the attempt",
    "began>started": "runner: subscribe to the job's subject, then job.started is encoded",
    "started>finished": "runner: prepare, hand the job to a forked child, run, result "
    "back over the pipe, outcome",
    "finished>terminal": "runner: final log flush, encode the terminal event",
    "terminal>terminal_wire": "runner: publish job.succeeded",
    "terminal_wire>answered": "gateway: event delivered to its subscription, decode, "
    "unsubscribe, answer; client reads the response",
}


def hop_breakdown(
    http: httpx.Client, samples: list[Sample], wire: dict[str, dict[str, float]]
) -> dict[str, Any]:
    """Where one sync job's time goes, from the client's clock, the job's own event
    timestamps and the wire observer's (one machine, one clock). Per hop: p50, mean and
    p90 in ms over the samples."""
    per: dict[str, list[float]] = {k: [] for k in HOPS}
    for s in samples:
        job = s.answer
        r = http.get(f"/v1/jobs/{job['id']}/events")
        r.raise_for_status()
        evs = {e["type"]: e for e in r.json()["events"]}
        seen = wire.get(job["id"], {})
        if "succeeded" not in evs or not {"cmd", "work", "job.queued", "job.succeeded"} <= set(
            seen
        ):
            continue
        t = {
            "sent": s.sent_wall,
            "accepted": _ts(job["created_at"]),
            "cmd_wire": seen["cmd"],
            "queued": _ts(evs["queued"]["at"]),
            "queued_wire": seen["job.queued"],
            "work_wire": seen["work"],
            "began": _ts(job["started_at"]),
            "started": _ts(evs["started"]["at"]),
            "finished": _ts(job["finished_at"]),
            "terminal": _ts(evs["succeeded"]["at"]),
            "terminal_wire": seen["job.succeeded"],
            "answered": s.recv_wall,
        }
        for hop in HOPS:
            a, b = hop.split(">")
            per[hop].append((t[b] - t[a]) * 1000.0)
    n = len(per["sent>accepted"])
    out: dict[str, Any] = {"n": n, "hops": {}, "points": dict(POINTS)}
    total_p50 = 0.0
    for hop, what in HOPS.items():
        vals = sorted(per[hop])
        if not vals:
            continue
        p50 = pct(vals, 50)
        total_p50 += p50
        out["hops"][hop] = {
            "what": what,
            "p50_ms": round(p50, 3),
            "mean_ms": round(sum(vals) / len(vals), 3),
            "p90_ms": round(pct(vals, 90), 3),
        }
    out["sum_of_p50_ms"] = round(total_p50, 3)
    if samples:
        out["end_to_end"] = latency_summary([s.seconds for s in samples])
    return out
