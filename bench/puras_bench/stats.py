"""Percentiles and latency summaries (the same arithmetic for every system measured)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["latency_summary", "pct"]


def pct(sorted_vals: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile of an already sorted, non-empty sequence."""
    if not sorted_vals:
        raise ValueError("no samples")
    k = (len(sorted_vals) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_vals) - 1)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (k - lo)


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """p50/p90/p99/mean/min/max in ms of samples given in seconds."""
    imax = max(range(len(seconds)), key=seconds.__getitem__)
    ms = sorted(s * 1000.0 for s in seconds)

    def r(v: float) -> float:
        return round(v, 3)

    return {
        "n": len(ms),
        "p50_ms": r(pct(ms, 50)),
        "p90_ms": r(pct(ms, 90)),
        "p99_ms": r(pct(ms, 99)),
        "mean_ms": r(sum(ms) / len(ms)),
        "min_ms": r(ms[0]),
        "max_ms": r(ms[-1]),
        "max_at": imax,  # index of the slowest sample: spots a one-off stall
    }
