"""What a fresh, sandboxed process costs this machine's kernel, with nothing else around
it: the floor under the runner's per-job CPU (``python -m puras_bench.ns_floor``).

Each row forks N children of this (small) Python process that do nothing but create
the namespaces named and exit (with a pid namespace, a second fork: a new pid namespace
applies to children only), and reports the whole machine's busy CPU per child, the
kernel's teardown of the namespaces included (it runs in kernel threads, after the
exit, hence the pause before the second reading). Needs root or unprivileged user
namespaces; a row the kernel refuses says so.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

ROWS: list[tuple[str, int]] = [
    ("fork and exit", 0),
    ("+ user namespace", CLONE_NEWUSER),
    ("+ mount namespace", CLONE_NEWUSER | CLONE_NEWNS),
    ("+ pid namespace (second fork)", CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID),
    ("+ IPC namespace", CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC),
    (
        "+ network namespace (a job's set)",
        CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET,
    ),
]


def _busy_ticks() -> int:
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def measure(flags: int, n: int, settle_s: float = 1.0) -> tuple[float, float] | None:
    """(busy CPU ms, wall ms) per child, or ``None`` when the kernel refuses ``flags``."""
    libc = ctypes.CDLL(None, use_errno=True)
    before, t0 = _busy_ticks(), time.perf_counter()
    for _ in range(n):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            if flags and libc.unshare(flags) != 0:
                os._exit(1)
            if flags & CLONE_NEWPID:
                inner = os.fork()
                if inner == 0:
                    os._exit(0)
                os.waitpid(inner, 0)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            return None
    wall = time.perf_counter() - t0
    time.sleep(settle_s)  # the namespaces' teardown runs after the exits
    busy = (_busy_ticks() - before) / os.sysconf("SC_CLK_TCK")
    return busy / n * 1000, wall / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200, help="children per row (200)")
    args = ap.parse_args()
    print("| process | busy CPU per child (ms) | wall per child (ms) |")
    print("|---|---:|---:|")
    for label, flags in ROWS:
        got = measure(flags, args.n)
        if got is None:
            print(f"| {label} | refused by the kernel | |")
        else:
            print(f"| {label} | {got[0]:.2f} | {got[1]:.2f} |")


if __name__ == "__main__":
    main()
