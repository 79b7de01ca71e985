"""Celery without HTTP, for context: sequential ``apply_async().get()`` and throughput
from submitter threads, as the reference peer benchmark measures it.

Runs in the peer venv against a worker already started by ``puras_bench.peer``; prints
one JSON object. Usage: ``python celery_direct.py N WARMUP TOTAL THREADS``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

from celery_peer import noop


def _summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = sorted(s * 1000.0 for s in seconds)

    def pct(p: float) -> float:
        k = (len(ms) - 1) * p / 100.0
        lo = int(k)
        hi = min(lo + 1, len(ms) - 1)
        return round(ms[lo] + (ms[hi] - ms[lo]) * (k - lo), 3)

    return {
        "n": len(ms),
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "mean_ms": round(sum(ms) / len(ms), 3),
    }


def seq(n: int, warmup: int) -> dict[str, float]:
    for i in range(warmup):
        assert noop.apply_async((i,)).get(timeout=10) == i
    lat: list[float] = []
    for i in range(n):
        t0 = time.perf_counter()
        r = noop.apply_async((i,)).get(timeout=10)
        lat.append(time.perf_counter() - t0)
        assert r == i
    return _summary(lat)


def throughput(total: int, nthreads: int) -> dict[str, Any]:
    shares = [total // nthreads + (1 if k < total % nthreads else 0) for k in range(nthreads)]
    barrier = threading.Barrier(nthreads + 1)
    errors: list[str] = []

    def worker(k: int, n: int) -> None:
        try:
            noop.apply_async((-1,)).get(timeout=30)  # the result backend is per thread
        except Exception as e:
            errors.append(repr(e))
        barrier.wait()
        try:
            base = k * 1_000_000
            rs = [noop.apply_async((base + i,)) for i in range(n)]
            for i, r in enumerate(rs):
                if r.get(timeout=120) != base + i:
                    errors.append(f"bad result thread {k} item {i}")
        except Exception as e:
            errors.append(repr(e))

    ts = [threading.Thread(target=worker, args=(k, n), daemon=True) for k, n in enumerate(shares)]
    for t in ts:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join(timeout=300)
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"throughput errors ({len(errors)}): {errors[:3]}")
    return {
        "jobs": total,
        "clients": nthreads,
        "elapsed_s": round(elapsed, 3),
        "jobs_per_s": round(total / elapsed, 1),
    }


def main() -> None:
    n, warmup, total, nthreads = (int(a) for a in sys.argv[1:5])
    out = {"seq": seq(n, warmup), "throughput": throughput(total, nthreads)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
