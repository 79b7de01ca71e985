"""CPU time used by a process and all its descendants, from /proc (Linux).

A service's CPU during a phase = its tree's (utime + stime + cutime + cstime) after minus
before. Children that exited and were reaped are in their parent's cutime/cstime; live
ones are counted on their own; so a runner's forked job processes are counted too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

__all__ = ["CpuMeter", "process_trees", "tree_cpu_s", "wait_quiet"]

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(ppid, own cpu seconds, cpu seconds incl. reaped children) of a process, None if
    it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parens: the fields after the last ')' are fixed.
    rest = data[data.rindex(b")") + 2 :].split()
    ppid = int(rest[1])
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return ppid, (utime + stime) / _TICK, (utime + stime + cutime + cstime) / _TICK


def _all() -> dict[int, tuple[int, float, float]]:
    out: dict[int, tuple[int, float, float]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def _trees(
    roots: Mapping[str, int], procs: Mapping[int, tuple[int, float, float]]
) -> dict[str, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, list[int]] = {}
    for name, root in roots.items():
        if root not in procs:
            out[name] = []
            continue
        tree: list[int] = []
        todo = [root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo += children.get(pid, [])
        out[name] = tree
    return out


def process_trees(roots: Mapping[str, int]) -> dict[str, list[int]]:
    """The live pids of each named root's tree, the root first (empty if it is gone)."""
    return _trees(roots, _all())


def tree_cpu_s(roots: Mapping[str, int]) -> dict[str, tuple[float, float]]:
    """(the root process's own, its whole tree's) CPU seconds for each named root pid."""
    procs = _all()
    out: dict[str, tuple[float, float]] = {}
    for name, tree in _trees(roots, procs).items():
        if not tree:
            out[name] = (0.0, 0.0)
            continue
        out[name] = (procs[tree[0]][1], sum(procs[pid][2] for pid in tree))
    return out


def wait_quiet(
    roots: Mapping[str, int],
    *,
    below_cores: float = 0.05,
    window_s: float = 0.5,
    timeout_s: float = 15.0,
) -> float:
    """Block until the roots' trees together use under ``below_cores`` of a core over a
    ``window_s`` window (the stack has caught up after a phase: projections written,
    acks sent), or ``timeout_s`` passed; the seconds waited."""
    t0 = time.monotonic()
    before = sum(v[1] for v in tree_cpu_s(roots).values())
    while time.monotonic() - t0 < timeout_s:
        time.sleep(window_s)
        after = sum(v[1] for v in tree_cpu_s(roots).values())
        if after - before < below_cores * window_s:
            break
        before = after
    return round(time.monotonic() - t0, 2)


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / _TICK, total / _TICK


class CpuMeter:
    """``with CpuMeter(roots) as m: ...`` then ``m.used`` = CPU seconds per root."""

    def __init__(self, roots: Mapping[str, int]) -> None:
        self.roots = dict(roots)
        self.used: dict[str, float] = {}
        """CPU seconds of each root's tree over the block."""
        self.used_self: dict[str, float] = {}
        """CPU seconds of each root process alone (its descendants left out)."""
        self.machine_busy_s = 0.0
        """Busy CPU seconds of the whole machine over the block (all processes)."""
        self.machine_total_s = 0.0
        self._before: dict[str, tuple[float, float]] = {}
        self._busy0 = (0.0, 0.0)

    def __enter__(self) -> CpuMeter:
        self._before = tree_cpu_s(self.roots)
        self._busy0 = machine_busy_s()
        return self

    def __exit__(self, *exc: object) -> None:
        busy1 = machine_busy_s()
        after = tree_cpu_s(self.roots)
        zero = (0.0, 0.0)
        self.used = {k: round(after[k][1] - self._before.get(k, zero)[1], 3) for k in after}
        self.used_self = {k: round(after[k][0] - self._before.get(k, zero)[0], 3) for k in after}
        self.machine_busy_s = round(busy1[0] - self._busy0[0], 3)
        self.machine_total_s = round(busy1[1] - self._busy0[1], 3)
