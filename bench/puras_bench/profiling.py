"""Sampling profiles of the running services with py-spy (attached by pid: the services
run unchanged). py-spy lives in a scratch venv of its own (``.puras/bench/tools-venv``).

py-spy's own idle detection is not reliable on every kernel (threads parked in a
thread pool's queue or in the event loop's epoll show up as busy), so samples whose
innermost frame is such a wait are dropped here (:data:`IDLE_LEAVES`). That also drops
the work uvloop does in C under ``Runner.run`` (socket reads and writes): the shares
below are of the Python-level work; the CPU each process really used comes from /proc
(``cpu_*`` in the results).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["PySpy", "ensure_py_spy", "summarize"]

REPO = Path(__file__).resolve().parents[2]
TOOLS_VENV = REPO / ".puras" / "bench" / "tools-venv"

Log = Callable[[str], None]


def ensure_py_spy(log: Log) -> Path | None:
    """Path of py-spy (installed into the tools venv on first use), or None if it cannot be."""
    exe = TOOLS_VENV / "bin" / "py-spy"
    if exe.exists():
        return exe
    uv = Path(sys.executable).parent / "uv"
    uv_bin = str(uv) if uv.exists() else shutil.which("uv")
    if uv_bin is None:
        log("no uv binary: cannot install py-spy; profiles skipped")
        return None
    log(f"installing py-spy into {TOOLS_VENV} (uv venv + uv pip install)")
    TOOLS_VENV.parent.mkdir(parents=True, exist_ok=True)
    for argv in (
        [uv_bin, "venv", "--quiet", "--python", sys.executable, str(TOOLS_VENV)],
        [
            uv_bin,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(TOOLS_VENV / "bin" / "python"),
            "py-spy",
        ],
    ):
        r = subprocess.run(argv, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            log(f"{' '.join(argv[:3])} failed: {r.stderr.strip()[-500:]}; profiles skipped")
            return None
    return exe if exe.exists() else None


class PySpy:
    """``py-spy record`` on several pids at once, for ``seconds``."""

    def __init__(self, exe: Path, out_dir: Path, rate: int = 250) -> None:
        self.exe = exe
        self.out_dir = out_dir
        self.rate = rate
        self._procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}

    def start(self, pids: dict[str, int], seconds: float, subprocesses: frozenset[str]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            out = self.out_dir / f"{name}.txt"
            argv = [
                str(self.exe),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                str(self.rate),
                "--format",
                "raw",
                "--output",
                str(out),
            ]
            if name in subprocesses:
                argv.append("--subprocesses")
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self._procs[name] = (p, out)

    def wait(self) -> dict[str, Path | str]:
        out: dict[str, Path | str] = {}
        for name, (p, path) in self._procs.items():
            try:
                _, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                _, err = p.communicate()
            if p.returncode == 0 and path.exists():
                out[name] = path
            else:
                out[name] = f"py-spy exited {p.returncode}: {err.decode(errors='replace')[-400:]}"
        self._procs.clear()
        return out


IDLE_LEAVES = (
    "_worker (",  # concurrent.futures worker waiting on its queue
    "Runner.run (",  # the event loop itself (uvloop's epoll and C-level I/O)
    "EpollSelector.select (",
    "select (",
    "wait (threading",
    "_wait_for_tstate_lock (",
)
"""Innermost frames that mean "waiting", whatever py-spy thought."""

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>.*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    f = m.group("file")
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in f:
            f = f.split(marker, 1)[1]
            break
    return f"{m.group('fn')} ({f})"


def summarize(path: Path, rate: int, jobs: int, top: int = 40) -> dict[str, Any]:
    """Top functions of a raw (collapsed) py-spy profile, by self and by inclusive share of
    the Python-level samples (waits dropped), and those samples in ms per job."""
    self_c: Counter[str] = Counter()
    incl_c: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        stack, count = m.group(1), int(m.group(2))
        frames = [_short(f) for f in stack.split(";")]
        # py-spy puts "process N:..." and "thread (...)" pseudo-frames first.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames or frames[-1].startswith(IDLE_LEAVES):
            continue
        total += count
        self_c[frames[-1]] += count
        for f in set(frames):
            incl_c[f] += count

    def rows(c: Counter[str]) -> list[dict[str, Any]]:
        return [
            {
                "fn": fn,
                "pct": round(100.0 * n / total, 1),
                "ms_per_job": round(n / rate * 1000 / max(jobs, 1), 3),
            }
            for fn, n in c.most_common(top)
        ]

    return {
        "samples": total,
        "python_ms_per_job": round(total / rate * 1000 / max(jobs, 1), 3),
        "top_self": rows(self_c),
        "top_inclusive": rows(incl_c),
    }
