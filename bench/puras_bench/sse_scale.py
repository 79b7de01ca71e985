"""Job event streams (SSE): the first event after a submit, and many streams held at once.

Two measures on a started stack (``run``):

* first event: ``POST /v1/jobs?stream=true`` of the no-op skill, N one after the other,
  each on a fresh connection (connected before the clock starts): the time from writing
  the request to having the first data frame (``event: queued``), and to the ``end``
  frame, read to the end before the next submit;
* streams held: K submit streams on jobs that stay live, opened ``open_concurrency`` at
  a time, by one client process on one event loop; while they are open, the latency of
  a plain sync submit (``?wait=true``, one client, as in (a)) against the same measure
  just before they were opened, and the memory of the gateway (and of the rest of the
  stack) against before; then they are closed and what the gateway gives back is seen.

The held streams' jobs are submitted to a project of their own with no credit, so each
one is held by the scheduler (J7: ``queued`` with ``held: true``) and stays live without
a runner slot: nothing runs, nothing ends, and the sync jobs measured meanwhile (on the
bench's funded project) do not queue behind them. Each stream is a raw asyncio
``Protocol`` writing its request by hand and keeping only the last bytes it got: one
client holds ten thousand connections in a few tens of MiB and little CPU, so what is
measured is the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import httpx

from puras_bench.load import run_sequential
from puras_bench.memstat import sample, summarize
from puras_bench.ours import BENCH_PROJECT, OurStack, noop_call
from puras_bench.procstat import CpuMeter, wait_quiet
from puras_bench.stats import latency_summary
from puras_bundle import pack_project
from puras_cli import api

__all__ = [
    "FIRST_EVENT_GOAL_MS",
    "STREAMS_GOAL",
    "SsePlan",
    "first_event",
    "hold_streams",
    "raise_nofile",
    "run",
]

FIRST_EVENT_GOAL_MS = 5.0
"""p50 from sending ``POST /v1/jobs?stream=true`` to the first data frame."""
STREAMS_GOAL = 10_000
"""Concurrent streams of live jobs one gateway process holds."""

Log = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class SsePlan:
    first_n: int = 200
    """Sequential stream submits timed for the first event."""
    first_warmup: int = 10
    streams: int = STREAMS_GOAL
    """Streams held at once (0: that measure is left out)."""
    open_concurrency: int = 64
    """Streams being opened at a time (each waits for its first frame)."""
    sync_n: int = 100
    """Sync jobs timed without and with the streams open."""
    sync_warmup: int = 10
    open_budget_s: float = 100.0
    """No more streams are opened after this long (the count reached is reported)."""
    extra: dict[str, Any] = field(default_factory=dict)


def raise_nofile() -> tuple[int, int]:
    """Raise this process's open-file limit to its hard limit (streams are sockets, and
    the stack's processes, started from here, inherit it); the (soft, hard) now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _nofile_of(pid: int) -> int | None:
    """The soft open-file limit of another process, from /proc."""
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    v = line.split()[3]
                    return None if v == "unlimited" else int(v)
    except (OSError, IndexError, ValueError):
        return None
    return None


# -- the client: one SSE stream per connection, by hand ----------------------------------


def _request(host: str, port: int, api_key: str, body: dict[str, Any]) -> bytes:
    data = json.dumps(body, separators=(",", ":")).encode()
    head = (
        f"POST /v1/jobs?stream=true HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {api_key}\r\n"
        f"Accept: text/event-stream\r\n"
        f"Content-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


_TAIL = 64
"""Bytes a held stream keeps once its first frame is in (enough to see an ``end``)."""


class _Stream(asyncio.Protocol):
    """One ``POST /v1/jobs?stream=true`` and its answer.

    ``first`` resolves (seconds from :meth:`send`) once the response's first data frame
    is complete; ``done`` once the answer ended (its last chunk, ``"end"``), the server
    closed (``"eof"``) or the connection was lost (``"lost"``). With ``keep_all`` the
    whole answer is kept in ``buf`` (to check the ``end`` frame), else only its last
    bytes after the first frame.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, keep_all: bool) -> None:
        self.first: asyncio.Future[float] = loop.create_future()
        self.done: asyncio.Future[str] = loop.create_future()
        self.buf = bytearray()
        self.keep_all = keep_all
        self.job_id = ""
        self.transport: asyncio.Transport | None = None
        self._body = -1
        self._t0 = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self._t0 = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        if self.first.done():
            self.buf += data
            if not self.keep_all and len(self.buf) > 4 * _TAIL:
                del self.buf[:-_TAIL]
            self._check_end()
            return
        self.buf += data
        if self._body < 0:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            self._body = i + 4
            head = bytes(self.buf[:i]).decode("latin-1").split("\r\n")
            if not head[0].startswith("HTTP/1.1 200"):
                self.first.set_exception(
                    RuntimeError(f"stream submit answered {bytes(self.buf[:400])!r}")
                )
                self.close()
                return
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "puras-job-id":
                    self.job_id = value.strip()
        # A frame is one chunk: "event: queued\nid: 1\ndata: {...}\n\n" (pings are
        # ": ping\n\n", with no data line).
        d = self.buf.find(b"\ndata: ", self._body)
        if d < 0 or self.buf.find(b"\n\n", d) < 0:
            return
        self.first.set_result(time.perf_counter() - self._t0)
        if not self.keep_all:
            del self.buf[:-_TAIL]
        self._check_end()

    def _check_end(self) -> None:
        # The chunked body's last chunk (it follows the end frame). A frame's chunk ends
        # in "\n\n\r\n", so this is never the tail of one.
        if self.buf.endswith(b"\r\n0\r\n\r\n") and not self.done.done():
            self.done.set_result("end")

    def eof_received(self) -> bool | None:
        self._ended("eof")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended("lost")

    def _ended(self, how: str) -> None:
        if not self.first.done():
            self.first.set_exception(
                RuntimeError(f"stream closed ({how}) before its first frame: {bytes(self.buf)!r}")
            )
        if not self.done.done():
            self.done.set_result(how)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def end_frame(self) -> dict[str, Any]:
        """The JobOut of the ``end`` frame (``keep_all`` streams)."""
        i = self.buf.find(b"event: end\ndata: ")
        if i < 0:
            raise RuntimeError(f"no end frame in {bytes(self.buf[-300:])!r}")
        j = self.buf.find(b"\n\n", i)
        out: dict[str, Any] = json.loads(bytes(self.buf[i + 17 : j]))
        return out


async def _open(
    loop: asyncio.AbstractEventLoop,
    host: str,
    port: int,
    request: bytes,
    *,
    keep_all: bool,
) -> _Stream:
    _, proto = await loop.create_connection(lambda: _Stream(loop, keep_all), host, port)
    proto.send(request)
    return proto


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a gateway dependency
        return asyncio.new_event_loop()


# -- (1) first event ---------------------------------------------------------------------


def first_event(ours: OurStack, n: int, warmup: int) -> dict[str, Any]:
    """N stream submits of the no-op skill, one after the other, each on a fresh
    connection: submit → first data frame, and submit → end frame."""
    u = urlsplit(ours.stack.api_base)
    host, port = u.hostname or "127.0.0.1", u.port or 80

    async def go() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        firsts: list[float] = []
        ends: list[float] = []
        for i in range(warmup + n):
            x = 5_000_000 + i
            req = _request(host, port, ours.api_key, {"skill": "noop", "inputs": {"x": x}})
            _, s = await loop.create_connection(lambda: _Stream(loop, True), host, port)
            try:
                t0 = time.perf_counter()
                s.send(req)
                first = await asyncio.wait_for(s.first, 30)  # from s.send's own clock
                how = await asyncio.wait_for(s.done, 60)
                t_end = time.perf_counter() - t0
                if how != "end":
                    raise RuntimeError(f"stream of job {s.job_id} ended by {how}")
                job = s.end_frame()
                if job.get("status") != "succeeded" or job.get("result") != {"x": x}:
                    raise RuntimeError(f"stream of job {s.job_id} ended with {job}")
            finally:
                s.close()
            if i >= warmup:
                firsts.append(first)
                ends.append(t_end)
        return {
            "n": n,
            "first_event": latency_summary(firsts),
            "end_frame": latency_summary(ends),
            "goal_p50_ms": FIRST_EVENT_GOAL_MS,
        }

    with asyncio.Runner(loop_factory=_new_loop) as runner:
        return runner.run(go())


# -- (2) streams held --------------------------------------------------------------------


class _Holder:
    """An event loop in a thread of its own that opens and keeps the streams, so this
    thread can time sync jobs while they are open."""

    def __init__(self) -> None:
        self.loop = _new_loop()
        self._thread = threading.Thread(target=self._run, name="bench-sse", daemon=True)
        self.streams: list[_Stream] = []

    def __enter__(self) -> _Holder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.call(self.close_all(), timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        if not self._thread.is_alive():
            self.loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def open_all(
        self,
        host: str,
        port: int,
        api_key: str,
        k: int,
        concurrency: int,
        budget_s: float,
        log: Log,
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        firsts: list[float] = []
        t0 = time.perf_counter()
        deadline = time.monotonic() + budget_s
        out_of_time = False
        next_i = 0
        next_log = 1000

        async def worker() -> None:
            nonlocal next_i, next_log, out_of_time
            while next_i < k and len(errors) <= 20:
                if time.monotonic() >= deadline:
                    out_of_time = True
                    return
                i = next_i
                next_i += 1
                req = _request(host, port, api_key, {"skill": "noop", "inputs": {"x": i}})
                try:
                    s = await _open(loop, host, port, req, keep_all=False)
                    self.streams.append(s)
                    firsts.append(await asyncio.wait_for(s.first, 30))
                except (OSError, RuntimeError, TimeoutError) as exc:
                    errors.append(repr(exc))
                    continue
                if len(firsts) >= next_log:
                    next_log += 1000
                    log(f"    {len(firsts)} streams open ({time.perf_counter() - t0:.1f}s)")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - t0
        return {
            "asked": k,
            "opened": len(firsts),
            "open_s": round(elapsed, 2),
            "opened_per_s": round(len(firsts) / elapsed, 1) if elapsed else None,
            "budget_s": budget_s,
            "budget_hit": out_of_time,
            "concurrency": concurrency,
            "first_event_while_opening": latency_summary(firsts) if firsts else None,
            "errors": len(errors),
            "error_examples": errors[:3],
        }

    async def census(self) -> dict[str, int]:
        """How the streams stand now: still open (waiting for more frames), or ended."""
        out = {"open": 0, "ended_by_end_frame": 0, "closed_by_server": 0}
        for s in self.streams:
            if not s.done.done() and s.first.done() and not s.first.exception():
                out["open"] += 1
            elif s.done.done() and s.done.result() == "end":
                out["ended_by_end_frame"] += 1
            else:
                out["closed_by_server"] += 1
        return out

    async def close_all(self) -> None:
        for s in self.streams:
            s.close()
        self.streams.clear()
        # Let the transports' closing callbacks run before the loop may stop.
        for _ in range(3):
            await asyncio.sleep(0)


def _held_project(ours: OurStack) -> str:
    """A project with the bench skills deployed and no credit: its jobs are all held.
    Returns its API key."""
    with ours.stack.client() as admin:
        project_id = api.create_project(admin, "bench-sse-held")
        key = str(api.create_project_key(admin, project_id)["key"])
    with httpx.Client(
        base_url=ours.stack.api_base, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        r = http.post(
            "/v1/deployments",
            files={"bundle": ("bench.zip", pack_project(BENCH_PROJECT).data, "application/zip")},
            data={"notes": "bench sse"},
        )
        if r.status_code != 200:
            raise RuntimeError(f"deploying to the held project failed: {r.status_code} {r.text}")
    return key


def _sync_run(
    ours: OurStack, roots: dict[str, int], n: int, warmup: int
) -> tuple[dict[str, Any], dict[str, float]]:
    """Sync no-op jobs, one client, and the CPU per job of each service meanwhile."""
    sync = noop_call(ours, wait=True)
    if warmup:
        run_sequential(sync, warmup, 0)
    with CpuMeter(roots) as m:
        lat, _ = run_sequential(sync, n, 0)
    return lat, {k: round(v * 1000 / n, 3) for k, v in m.used.items()}


def _held_job_state(ours: OurStack, key: str, streams: list[_Stream]) -> dict[str, Any]:
    """One held stream's job as the API shows it: queued, held for credit (the streams'
    jobs are live and take no runner slot)."""
    job_id = next((s.job_id for s in streams if s.job_id), "")
    if not job_id:
        return {}
    with httpx.Client(
        base_url=ours.stack.api_base, headers={"Authorization": f"Bearer {key}"}, timeout=30
    ) as http:
        job = http.get(f"/v1/jobs/{job_id}").json()
    return {"id": job_id, "status": job.get("status"), "held_reason": job.get("held_reason")}


def _mem(roots: dict[str, int]) -> dict[str, Any]:
    return summarize([sample(roots)])


def hold_streams(ours: OurStack, plan: SsePlan, roots: dict[str, int], log: Log) -> dict[str, Any]:
    """Open ``plan.streams`` submit streams on held jobs and time sync jobs meanwhile."""
    u = urlsplit(ours.stack.api_base)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    soft, hard = raise_nofile()
    gw = roots.get("gateway")
    gw_nofile = _nofile_of(gw) if gw else None
    k = plan.streams
    limits = [soft - 256] + ([gw_nofile - 256] if gw_nofile else [])
    if k > min(limits):
        log(
            f"    open-file limits (bench {soft}, gateway {gw_nofile}) allow about "
            f"{min(limits)} streams, not {k}"
        )
        k = max(0, min(limits))
    out: dict[str, Any] = {
        "streams_goal": STREAMS_GOAL,
        "nofile": {"bench": soft, "bench_hard": hard, "gateway": gw_nofile},
    }
    t_all = time.monotonic()
    key = _held_project(ours)
    wait_quiet(roots, below_cores=0.1, timeout_s=10)
    log(f"    sync jobs before the streams: {plan.sync_n} sequential")
    out["sync_without"], out["cpu_per_sync_job_without_ms"] = _sync_run(
        ours, roots, plan.sync_n, plan.sync_warmup
    )
    out["memory_before"] = _mem(roots)
    out["gateway_processes"] = out["memory_before"]["groups"].get("gateway", {}).get("procs", 0)
    log(f"    opening {k} submit streams on held jobs, {plan.open_concurrency} at a time")
    with _Holder() as holder:
        with CpuMeter(roots) as cpu:
            out["open"] = holder.call(
                holder.open_all(host, port, key, k, plan.open_concurrency, plan.open_budget_s, log),
                timeout=plan.open_budget_s + 120,
            )
        opened = out["open"]["opened"]
        # What opening a stream (a held job's submit) costs each service: it bounds how
        # fast this measure can open them on a machine of this size.
        out["open"]["cpu_per_stream_ms"] = {
            name: round(v * 1000 / opened, 3) for name, v in cpu.used.items() if opened
        }
        out["open"]["machine_busy_per_stream_ms"] = (
            round(cpu.machine_busy_s * 1000 / opened, 3) if opened else None
        )
        log(
            f"    {opened} streams open in {out['open']['open_s']}s "
            f"({out['open']['opened_per_s']}/s, {out['open']['errors']} errors)"
        )
        out["settle_s"] = wait_quiet(roots, below_cores=0.1, timeout_s=20)
        out["memory_open"] = _mem(roots)
        log(f"    sync jobs with {opened} streams open: {plan.sync_n} sequential")
        out["sync_with"], out["cpu_per_sync_job_with_ms"] = _sync_run(
            ours, roots, plan.sync_n, plan.sync_warmup
        )
        out["census"] = holder.call(holder.census(), timeout=30)
        t_close = time.monotonic()
        out["held_job"] = _held_job_state(ours, key, holder.streams)
        holder.call(holder.close_all(), timeout=60)
    out["close_settle_s"] = round(
        time.monotonic() - t_close + wait_quiet(roots, below_cores=0.1, timeout_s=20), 2
    )
    out["memory_after_close"] = _mem(roots)
    out["wall_s"] = round(time.monotonic() - t_all, 1)
    # This process's peak RSS: what holding the streams cost the client (an upper bound:
    # the rest of the bench's run is in it too).
    out["client_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["opened"] = out["census"]["open"]

    def g(mem: dict[str, Any], name: str, fig: str) -> float:
        return float(mem["groups"].get(name, {}).get(f"{fig}_mib", {}).get("mean", 0.0))

    b, o = out["memory_before"], out["memory_open"]
    per_stream = {}
    for fig in ("rss", "uss", "pss"):
        d = g(o, "gateway", fig) - g(b, "gateway", fig)
        per_stream[f"gateway_{fig}_kib"] = round(d * 1024 / opened, 2) if opened else None
        t = o["total"][f"{fig}_mib"]["mean"] - b["total"][f"{fig}_mib"]["mean"]
        per_stream[f"stack_{fig}_kib"] = round(t * 1024 / opened, 2) if opened else None
    out["per_stream"] = per_stream
    w, wo = out["sync_with"]["p50_ms"], out["sync_without"]["p50_ms"]
    out["sync_p50_ratio"] = round(w / wo, 3) if wo else None
    return out


def run(ours: OurStack, plan: SsePlan, roots: dict[str, int], log: Log) -> dict[str, Any]:
    """Both measures (the held streams only when ``plan.streams``)."""
    log(f"(h) SSE: first event after a stream submit, {plan.first_n} sequential")
    wait_quiet(roots, below_cores=0.1, timeout_s=10)  # the phase before may still settle
    out: dict[str, Any] = {"first": first_event(ours, plan.first_n, plan.first_warmup)}
    f = out["first"]["first_event"]
    log(f"    first data frame p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms")
    if plan.streams > 0:
        log(f"(h) SSE: {plan.streams} streams of live jobs held at once, sync jobs meanwhile")
        out["held"] = hold_streams(ours, plan, roots, log)
        h = out["held"]
        log(
            f"    {h['opened']} open; sync p50 {h['sync_without']['p50_ms']:.2f} ms without, "
            f"{h['sync_with']['p50_ms']:.2f} ms with; gateway RSS "
            f"{h['memory_open']['groups'].get('gateway', {}).get('rss_mib', {}).get('mean')} MiB"
        )
    return out
