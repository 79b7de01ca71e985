"""Memory of each service's process tree, from ``/proc/<pid>/smaps_rollup`` (Linux).

Three figures per process, summed per service:

* RSS: every page the process maps, shared ones (libpython, a forked template's pages)
  counted again in every process that maps them, so a sum over-counts;
* PSS: each shared page split evenly between the processes that map it, so PSS sums to
  what a group of processes uses between them;
* USS (``Private_Clean + Private_Dirty``): the pages only this process maps, what the
  machine gets back when it exits.

A template and its forked spares share most of their pages copy-on-write: such a page is
in no one's USS, and counts whole in the group's PSS. So the template row's USS is what
the spares and the template hold of their own, its PSS what the group costs.

A service's row is its root process and every descendant; ``split`` names services
whose descendants get a row of their own (the runner's templates, Celery's prefork
children).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from puras_bench.procstat import process_trees

__all__ = [
    "OUR_SPLIT",
    "PEER_SPLIT",
    "TEMPLATE_GOAL_USS_MIB",
    "TEMPLATE_GROUP",
    "MemSampler",
    "idle_memory",
    "read_mem",
    "sample",
    "summarize",
    "template_row",
]

MIB = 1024 * 1024
TEMPLATE_GROUP = "runner templates + spares"
"""The runner's descendants: at idle, the warm template and its spare children (under
load also the jobs' processes, forks of the template)."""
OUR_SPLIT: Mapping[str, str] = {"runner": TEMPLATE_GROUP}
PEER_SPLIT: Mapping[str, str] = {"celery-worker": "celery prefork children"}
TEMPLATE_GOAL_USS_MIB = 25.0
"""An idle warm template (the template plus its spares) holds at most this, USS."""


@dataclass(frozen=True, slots=True)
class Mem:
    rss: int
    pss: int
    uss: int
    """Bytes."""


def read_mem(pid: int) -> Mem | None:
    """RSS, PSS and USS of one process, ``None`` if it is gone (or not readable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            data = f.read()
    except OSError:
        return None
    kb: dict[bytes, int] = {}
    for line in data.splitlines()[1:]:
        key, _, rest = line.partition(b":")
        fields = rest.split()
        if fields:
            kb[key] = int(fields[0])
    if b"Rss" not in kb:  # a kernel thread or a zombie: nothing mapped
        return None
    private = kb.get(b"Private_Clean", 0) + kb.get(b"Private_Dirty", 0)
    return Mem(kb[b"Rss"] * 1024, kb.get(b"Pss", 0) * 1024, private * 1024)


def sample(
    roots: Mapping[str, int], split: Mapping[str, str] | None = None
) -> dict[str, dict[str, int]]:
    """Per service (and split-off children): ``{"rss", "pss", "uss"}`` in bytes and
    ``procs``, the processes counted."""
    split = split or {}
    out: dict[str, dict[str, int]] = {}
    for name, tree in process_trees(roots).items():
        for i, pid in enumerate(tree):
            m = read_mem(pid)
            if m is None:
                continue
            group = name if i == 0 or name not in split else split[name]
            g = out.setdefault(group, {"rss": 0, "pss": 0, "uss": 0, "procs": 0})
            g["rss"] += m.rss
            g["pss"] += m.pss
            g["uss"] += m.uss
            g["procs"] += 1
    return out


def _mib(v: float) -> float:
    return round(v / MIB, 2)


def summarize(samples: list[dict[str, dict[str, int]]]) -> dict[str, Any]:
    """Mean and peak of each figure per service over the samples, and of their total, in
    MiB (the total's peak is that of the per-sample sums, not a sum of peaks)."""
    if not samples:
        return {"samples": 0, "groups": {}, "total": {}}
    names: list[str] = []
    for s in samples:
        names += [n for n in s if n not in names]
    groups: dict[str, Any] = {}
    for name in names:
        per = [s.get(name, {"rss": 0, "pss": 0, "uss": 0, "procs": 0}) for s in samples]
        g: dict[str, Any] = {"procs": max(p["procs"] for p in per)}
        for k in ("rss", "pss", "uss"):
            vals = [p[k] for p in per]
            g[f"{k}_mib"] = {"mean": _mib(sum(vals) / len(vals)), "peak": _mib(max(vals))}
        groups[name] = g
    total: dict[str, Any] = {}
    for k in ("rss", "pss", "uss"):
        sums = [sum(g[k] for g in s.values()) for s in samples]
        total[f"{k}_mib"] = {"mean": _mib(sum(sums) / len(sums)), "peak": _mib(max(sums))}
    total["procs"] = max(sum(g["procs"] for g in s.values()) for s in samples)
    return {"samples": len(samples), "groups": groups, "total": total}


def idle_memory(
    roots: Mapping[str, int],
    split: Mapping[str, str] | None = None,
    *,
    n: int = 3,
    gap_s: float = 0.2,
) -> dict[str, Any]:
    """``n`` samples ``gap_s`` apart, summarized (call it once the stack is quiet)."""
    samples = []
    for i in range(n):
        if i:
            time.sleep(gap_s)
        samples.append(sample(roots, split))
    return summarize(samples)


def template_row(idle: dict[str, Any]) -> dict[str, Any] | None:
    """The idle warm template's figures (template plus spares) against the goal."""
    g = idle.get("groups", {}).get(TEMPLATE_GROUP)
    if not g:
        return None
    uss = g["uss_mib"]["mean"]
    return {
        "procs": g["procs"],
        "uss_mib": uss,
        "pss_mib": g["pss_mib"]["mean"],
        "rss_mib": g["rss_mib"]["mean"],
        "goal_uss_mib": TEMPLATE_GOAL_USS_MIB,
        "met": uss <= TEMPLATE_GOAL_USS_MIB,
    }


class MemSampler:
    """``with MemSampler(roots, split) as m: <load>`` then ``m.summary``: samples taken
    every ``interval_s`` by a thread while the block runs (the first half an interval in,
    when the load is on), and one at the end if the block was shorter than that."""

    def __init__(
        self,
        roots: Mapping[str, int],
        split: Mapping[str, str] | None = None,
        interval_s: float = 2.0,
    ) -> None:
        self._roots = dict(roots)
        self._split = dict(split or {})
        self._interval = interval_s
        self._stop = threading.Event()
        self._samples: list[dict[str, dict[str, int]]] = []
        self._thread = threading.Thread(target=self._run, name="bench-mem", daemon=True)
        self.summary: dict[str, Any] = {}
        self.cpu_s = 0.0
        """CPU the sampling thread used (it runs in the bench client's process)."""

    def __enter__(self) -> MemSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        if not self._samples:
            self._samples.append(sample(self._roots, self._split))
        self.summary = summarize(self._samples)
        self.summary["interval_s"] = self._interval

    def _run(self) -> None:
        t0 = time.thread_time()
        wait = self._interval / 2
        while not self._stop.wait(wait):
            self._samples.append(sample(self._roots, self._split))
            wait = self._interval
        self.cpu_s = time.thread_time() - t0
