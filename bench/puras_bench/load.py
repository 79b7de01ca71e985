"""The HTTP client side of every measure: one code path for Puras and for the peer.

A :class:`Call` says what to POST for request ``i`` and how to check its answer; the
functions here drive it sequentially (latency) or from many threads (throughput), each
thread with its own keep-alive ``httpx.Client``, as the reference peer benchmark's
submitters are threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from puras_bench.stats import latency_summary

__all__ = ["Call", "Sample", "run_concurrent", "run_sequential"]


@dataclass(frozen=True)
class Call:
    """One kind of request: ``POST base+path?params`` with ``body(i)``; ``check`` raises
    when the answer is not the right one for ``i``."""

    base_url: str
    path: str
    body: Callable[[int], dict[str, Any]]
    check: Callable[[int, Any], None]
    method: str = "POST"
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 60.0

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=self.headers, timeout=self.timeout_s)

    def do(self, http: httpx.Client, i: int) -> Any:
        if self.method == "GET":
            r = http.get(self.path, params=self.params)
        else:
            r = http.post(self.path, params=self.params, json=self.body(i))
        if r.status_code != 200:
            raise RuntimeError(
                f"{self.method} {self.path} answered {r.status_code}: {r.text[:300]}"
            )
        out = r.json()
        self.check(i, out)
        return out


@dataclass(frozen=True)
class Sample:
    """One timed request: wall-clock send/receive (for lining up with event timestamps)."""

    i: int
    sent_wall: float
    recv_wall: float
    seconds: float
    answer: Any


def run_sequential(call: Call, n: int, warmup: int) -> tuple[dict[str, Any], list[Sample]]:
    """``warmup`` untimed requests, then ``n`` timed ones, one after the other, on one
    keep-alive connection."""
    samples: list[Sample] = []
    with call.client() as http:
        for i in range(warmup):
            call.do(http, i)
        for i in range(n):
            wall0 = time.time()
            t0 = time.perf_counter()
            out = call.do(http, i)
            t1 = time.perf_counter()
            samples.append(Sample(i, wall0, time.time(), t1 - t0, out))
    return latency_summary([s.seconds for s in samples]), samples


def run_concurrent(
    call: Call,
    total: int,
    clients: int,
    *,
    on_answer: Callable[[Any], None] | None = None,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """``total`` requests from ``clients`` threads (fixed equal shares), each sequential
    on its own keep-alive connection. Each thread makes one warm request before the
    start barrier; the clock runs from the barrier until the last thread is done."""
    shares = [total // clients + (1 if k < total % clients else 0) for k in range(clients)]
    barrier = threading.Barrier(clients + 1)
    errors: list[str] = []
    lat: list[list[float]] = [[] for _ in range(clients)]
    lock = threading.Lock()

    def worker(k: int, n: int) -> None:
        with call.client() as http:
            try:
                call.do(http, -1 - k)
            except Exception as exc:
                errors.append(f"warm request: {exc!r}")
            try:
                barrier.wait(timeout=120)
            except threading.BrokenBarrierError:
                return
            base = (k + 1) * 1_000_000
            mine = lat[k]
            for j in range(n):
                t0 = time.perf_counter()
                try:
                    out = call.do(http, base + j)
                except Exception as exc:
                    with lock:
                        errors.append(repr(exc))
                    if len(errors) > 20:
                        return
                    continue
                mine.append(time.perf_counter() - t0)
                if on_answer is not None:
                    on_answer(out)

    threads = [
        threading.Thread(target=worker, args=(k, n), daemon=True, name=f"bench-client-{k}")
        for k, n in enumerate(shares)
    ]
    for t in threads:
        t.start()
    barrier.wait(timeout=120)
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout_s
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    elapsed = time.perf_counter() - t0
    if any(t.is_alive() for t in threads):
        errors.append(f"clients still running after {timeout_s:.0f}s")
    if errors:
        raise RuntimeError(f"{len(errors)} request(s) failed, e.g. {errors[:3]}")
    all_lat = [x for per in lat for x in per]
    return {
        "t0_perf": t0,
        "jobs": total,
        "clients": clients,
        "elapsed_s": round(elapsed, 3),
        "jobs_per_s": round(total / elapsed, 1),
        "latency_under_load": latency_summary(all_lat),
    }
