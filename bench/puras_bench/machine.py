"""Facts about the machine a run was made on, taken before the run."""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime
from typing import Any

__all__ = ["machine_facts"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_mb() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def busy_fraction(seconds: float = 2.0) -> float:
    """Share of the machine's CPU time that was busy over the next ``seconds`` (all
    processes): other load on a shared machine skews every figure, so it is recorded."""
    from puras_bench.procstat import machine_busy_s

    b0, t0 = machine_busy_s()
    time.sleep(seconds)  # a measurement window, not a wait for something to happen
    b1, t1 = machine_busy_s()
    return round((b1 - b0) / (t1 - t0), 3) if t1 > t0 else 0.0


def machine_facts() -> dict[str, Any]:
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_mb": _mem_total_mb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in load],
        "busy_before": busy_fraction(),
    }
