"""Processes below a pid, read from ``/proc`` (Linux), and killing them safely.

A service's process group is not all it started: the runner gives each job process a
session of its own (ARCHITECTURE §5), so a signal to the runner's group misses them.
Walking the parent links finds them; the start time recorded with each pid makes sure a
later kill never hits an unrelated process that reused the pid. Where ``/proc`` does not
exist the walk finds nothing and process groups are all that is signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcRef", "descendants", "is_alive", "proc_ref", "signal_refs"]

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcRef:
    """A process, identified across pid reuse by its start time (clock ticks after boot)."""

    pid: int
    start_ticks: int


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start_ticks) of ``pid``, or ``None`` if it is gone."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after
    # the last ")"; start time is field 22, i.e. index 19 after the state.
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return rest[0], int(rest[1]), int(rest[19])
    except (IndexError, ValueError):
        return None


def proc_ref(pid: int) -> ProcRef | None:
    st = _stat(pid)
    return None if st is None else ProcRef(pid, st[2])


def is_alive(ref: ProcRef) -> bool:
    """True while that very process runs (a zombie has finished: it only awaits a reap)."""
    st = _stat(ref.pid)
    if st is None:
        if not _PROC.is_dir():
            # No /proc: fall back to "some process has this pid".
            try:
                os.kill(ref.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return False
    return st[2] == ref.start_ticks and st[0] != "Z"


def descendants(pid: int) -> list[ProcRef]:
    """Every live process below ``pid`` (children, grandchildren, in any session)."""
    if not _PROC.is_dir():
        return []
    children: dict[int, list[ProcRef]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        st = _stat(int(entry.name))
        if st is None or st[0] == "Z":
            continue
        children.setdefault(st[1], []).append(ProcRef(int(entry.name), st[2]))
    out: list[ProcRef] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child.pid)
    return out


def signal_refs(refs: Iterable[ProcRef], sig: signal.Signals) -> int:
    """Send ``sig`` to each of ``refs`` still alive; returns how many were signalled."""
    sent = 0
    for ref in refs:
        if is_alive(ref):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(ref.pid, sig)
                sent += 1
    return sent
