"""Per-job control groups: memory, process and CPU limits for a job as a whole.

rlimits are per process (and ``RLIMIT_NPROC`` counts every process of a uid, and does
nothing for root): five children of one job could each use the whole memory limit. A
cgroup per job counts everything the job started together. Both kernel interfaces:

* **cgroup v2** (one unified hierarchy, most current hosts and Kubernetes nodes): the
  runner's own cgroup becomes the parent. A cgroup with processes in it cannot hand
  controllers to children, so the runner first moves itself into a ``runner`` leaf, then
  enables ``memory pids cpu`` for a ``jobs`` sibling holding one cgroup per job
  (``memory.max``, ``memory.swap.max`` = 0, ``pids.max``, ``cpu.max``). Killing is
  ``cgroup.kill``.
* **cgroup v1** (one hierarchy per controller, as on these machines): a
  ``puras/<runner>/`` folder under each of ``memory``, ``pids`` and ``cpu``
  (``memory.limit_in_bytes`` and, with swap accounting, ``memory.memsw.limit_in_bytes``;
  ``pids.max``; ``cpu.cfs_quota_us``/``cpu.cfs_period_us``). Killing is SIGKILL to
  every pid listed, repeated until the cgroup is empty.

Where neither is writable (not root, no delegation) :meth:`JobCgroups.detect` returns a
``JobCgroups`` that enforces nothing and says so; the runner logs at start which limits
it can enforce.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from puras_common.logging import get_logger

__all__ = ["CgroupLimits", "JobCgroup", "JobCgroups", "Usage", "remove_cgroup"]

log = get_logger(__name__)

CGROUP_ROOT: Final = Path("/sys/fs/cgroup")
V1_CONTROLLERS: Final = ("memory", "pids", "cpu")
CPU_PERIOD_US: Final = 100_000
POOL_SIZE: Final = 32
"""Emptied job cgroups kept for reuse."""


@dataclass(frozen=True, slots=True)
class CgroupLimits:
    memory_bytes: int
    """Memory of the job as a whole (RSS, page cache and tmpfs it writes)."""
    pids: int
    """Processes and threads of the job as a whole."""
    cpus: float
    """CPU bandwidth in cores (1.0: one core's worth)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """What the kernel counted for one job's cgroup when it ended."""

    oom_killed: bool = False
    """The memory limit was hit and the kernel killed a process of the job."""
    pids_refused: bool = False
    """A fork was refused because the job had ``pids`` processes."""
    memory_peak_bytes: int = 0


class JobCgroup:
    """One job's cgroup (a folder per hierarchy)."""

    def __init__(self, paths: list[Path], version: int) -> None:
        self.paths = paths
        self.version = version
        self._base = (0, 0)
        """(OOM kills, refused forks) counted before this job: a pooled cgroup serves
        many jobs one after the other, and the kernel's counters only grow."""
        # Every job reads and writes these files a dozen times: plain strings and
        # os.open/os.read/os.write, not Path objects and their text files.
        base = os.fspath(paths[0])
        pids = os.fspath(paths[1] if version == 1 and len(paths) > 1 else paths[0])
        self._procs = [os.path.join(os.fspath(p), "cgroup.procs") for p in paths]
        self._kill_file = os.path.join(base, "cgroup.kill")
        self._pids_events = os.path.join(pids, "pids.events")
        self._memory_events = os.path.join(base, "memory.events")
        self._oom_control = os.path.join(base, "memory.oom_control")
        self._failcnt = os.path.join(base, "memory.failcnt")
        self._peak = os.path.join(
            base, "memory.peak" if version == 2 else "memory.max_usage_in_bytes"
        )

    def _counters(self) -> tuple[int, int]:
        refused = _keyed(self._pids_events).get("max", 0)
        if self.version == 2:
            return _keyed(self._memory_events).get("oom_kill", 0), refused
        oom = _keyed(self._oom_control)
        kills = oom["oom_kill"] if "oom_kill" in oom else _int(self._failcnt)
        return kills, refused

    def rebase(self) -> None:
        """Count from now on (before the cgroup serves its next job)."""
        self._base = self._counters()
        if self.version == 1:
            with contextlib.suppress(OSError):
                _write(self._peak, b"0")

    def add(self, pid: int) -> None:
        data = b"%d" % pid
        for path in self._procs:
            _write(path, data)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for path in self._procs:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in _read(path).split())
        return sorted(found)

    def usage(self) -> Usage:
        """What the kernel counted since this cgroup's current job began."""
        kills, refused = self._counters()
        return Usage(kills > self._base[0], refused > self._base[1], _int(self._peak))

    def empty(self) -> bool:
        return not self.pids()

    def kill(self) -> bool:
        """SIGKILL everything in the cgroup (and whatever it forks meanwhile). True if
        it was seen empty (cgroup v1, where killing is a loop until it is)."""
        if self.version == 2:
            with contextlib.suppress(OSError):
                _write(self._kill_file, b"1")
                return False
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return True
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        return False

    def remove(self) -> bool:
        """Delete the cgroup; False if it is not empty yet (retry later)."""
        ok = True
        for path in self.paths:
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                ok = False
        return ok


class JobCgroups:
    """Makes and removes job cgroups under this runner's parent folder(s)."""

    def __init__(
        self,
        version: int,
        parents: list[Path],
        limits: CgroupLimits,
        *,
        reason: str = "",
    ) -> None:
        self.version = version
        """2, 1, or 0 when no cgroup can be made (nothing is enforced)."""
        self.parents = parents
        self.limits = limits
        self.reason = reason
        self._seq = itertools.count(1)
        self._free: list[JobCgroup] = []
        """Emptied job cgroups, ready for the next job: making and removing a cgroup
        costs about a millisecond of the runner's CPU (three hierarchies on v1), and it
        would be paid on every job."""

    @property
    def enabled(self) -> bool:
        return self.version != 0

    def describe(self) -> str:
        if not self.enabled:
            return (
                f"per-job cgroups unavailable ({self.reason}): memory and processes are "
                "limited per process only (rlimits), CPU time by RLIMIT_CPU"
            )
        return (
            f"cgroup v{self.version}: memory {self.limits.memory_bytes >> 20} MiB, "
            f"{self.limits.pids} processes, {self.limits.cpus:g} CPU per job"
        )

    @classmethod
    def detect(
        cls,
        runner_tag: str,
        limits: CgroupLimits,
        *,
        root: Path = CGROUP_ROOT,
        self_cgroup: Path = Path("/proc/self/cgroup"),
    ) -> JobCgroups:
        """Set up this runner's parent cgroup(s), or explain why there are none."""
        try:
            if (root / "cgroup.controllers").is_file():
                try:
                    return cls(2, [_setup_v2(root, self_cgroup)], limits)
                except OSError as exc:
                    if exc.errno != errno.EROFS or not _remount_writable(root):
                        raise
                    return cls(2, [_setup_v2(root, self_cgroup)], limits)
            if all((root / c).is_dir() for c in V1_CONTROLLERS):
                return cls(1, _setup_v1(root, runner_tag), limits)
            return cls(0, [], limits, reason=f"no cgroup v1 or v2 hierarchy at {root}")
        except OSError as exc:
            return cls(0, [], limits, reason=f"{exc.strerror or exc} ({exc.filename})")

    def create(self, kind: str = "job", limits: CgroupLimits | None = None) -> JobCgroup | None:
        """A new cgroup with the job limits, or ``limits`` (``None`` when cgroups are
        unavailable)."""
        if not self.enabled:
            return None
        name = f"{kind}-{os.getpid()}-{next(self._seq)}"
        lim = limits or self.limits
        if self.version == 2:
            path = self.parents[0] / name
            path.mkdir()
            _try_write(path / "memory.max", str(lim.memory_bytes))
            _try_write(path / "memory.swap.max", "0")
            (path / "pids.max").write_text(str(lim.pids))
            (path / "cpu.max").write_text(f"{int(lim.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")
            return JobCgroup([path], 2)
        paths = [parent / name for parent in self.parents]
        for path in paths:
            path.mkdir()
        mem, pids, cpu = paths
        (mem / "memory.limit_in_bytes").write_text(str(lim.memory_bytes))
        # With swap accounting, the same limit on memory+swap: no escape into swap.
        _try_write(mem / "memory.memsw.limit_in_bytes", str(lim.memory_bytes))
        (pids / "pids.max").write_text(str(lim.pids))
        (cpu / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (cpu / "cpu.cfs_quota_us").write_text(str(int(lim.cpus * CPU_PERIOD_US)))
        return JobCgroup(paths, 1)

    def acquire(self) -> JobCgroup | None:
        """A job cgroup with the job limits: an emptied one if there is one."""
        if self._free:
            return self._free.pop()
        return self.create()

    def release(self, cg: JobCgroup, *, seen_empty: bool = False) -> bool:
        """After its job: kill what is left; keep it for the next job if it is empty
        (True), else the caller removes it once its processes are gone. ``seen_empty``:
        the caller's :meth:`JobCgroup.kill` just saw it empty (nothing can enter an
        empty job cgroup but what the runner puts there)."""
        seen_empty = seen_empty or cg.kill()
        if len(self._free) >= POOL_SIZE or not (seen_empty or cg.empty()):
            return False
        cg.rebase()
        self._free.append(cg)
        return True

    def drain(self) -> None:
        """Remove the pooled cgroups (at shutdown)."""
        while self._free:
            self._free.pop().remove()


def remove_cgroup(cg: JobCgroup, tries: int = 40) -> None:
    """rmdir the cgroup once its last process is gone (a killed process takes a moment
    to exit); retried from the event loop a few times, then left behind: on cgroup v1 the
    next runner of this host removes a dead runner's folders at start (``_sweep_dead``)."""
    if cg.remove() or tries <= 0:
        if tries <= 0:
            log.warning("cgroup still busy; left behind", path=str(cg.paths[0]))
        return
    cg.kill()
    with contextlib.suppress(RuntimeError):  # no loop: at interpreter exit
        asyncio.get_running_loop().call_later(0.05, remove_cgroup, cg, tries - 1)


def _setup_v2(root: Path, self_cgroup: Path) -> Path:
    own = _own_v2_cgroup(root, self_cgroup)
    wanted = {"memory", "pids", "cpu"}
    available = set((own / "cgroup.controllers").read_text().split())
    missing = wanted - available
    if missing:
        raise OSError(0, f"controllers {sorted(missing)} not delegated", str(own))
    leaf = own / "runner"
    jobs = own / "jobs"
    enabled = set((own / "cgroup.subtree_control").read_text().split())
    if not wanted <= enabled:
        # No internal processes: everything in our cgroup moves to the leaf first.
        leaf.mkdir(exist_ok=True)
        for pid in (own / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, OSError):
                (leaf / "cgroup.procs").write_text(pid)
        (own / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted)))
    jobs.mkdir(exist_ok=True)
    (jobs / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted)))
    return jobs


def _remount_writable(root: Path) -> bool:
    """A container's cgroup2 mount is read-only by default; with CAP_SYS_ADMIN, in the
    container's own mount and cgroup namespaces, the runner may make it writable (only
    its own subtree is visible there)."""
    from puras_runner import jail

    try:
        jail.mount(None, str(root), None, jail.MS_REMOUNT | jail.MS_NOSUID | jail.MS_NODEV)
    except OSError:
        return False
    log.info("remounted the cgroup hierarchy read-write", path=str(root))
    return True


def _own_v2_cgroup(root: Path, self_cgroup: Path) -> Path:
    for line in self_cgroup.read_text().splitlines():
        if line.startswith("0::"):
            rel = line[3:].strip().lstrip("/")
            # A runner already moved into its leaf by an earlier start of this process.
            path = root / rel
            return path.parent if path.name == "runner" else path
    return root


def _setup_v1(root: Path, runner_tag: str) -> list[Path]:
    """``puras/<host>-<pid>/`` under each controller; what runners of this host that
    died left there (their pid is gone) is removed first."""
    tag = _safe(runner_tag)
    parents = []
    for controller in V1_CONTROLLERS:
        base = root / controller / "puras"
        base.mkdir(parents=True, exist_ok=True)
        _sweep_dead(base, tag)
        parent = base / f"{tag}-{os.getpid()}"
        parent.mkdir(exist_ok=True)
        parents.append(parent)
    # A probe: the folders are writable, and limits can be set.
    probe = parents[1] / f"probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        (probe / "pids.max").write_text("1")
    finally:
        probe.rmdir()
    return parents


def _safe(tag: str) -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in tag)[:64] or "runner"


def _sweep_dead(base: Path, tag: str) -> None:
    for entry in base.iterdir():
        name, _, pid = entry.name.rpartition("-")
        if name != tag or not pid.isdigit() or not entry.is_dir():
            continue
        if int(pid) != os.getpid() and _alive(int(pid)):
            continue
        for child in entry.iterdir():
            if child.is_dir():
                cg = JobCgroup([child], 1)
                cg.kill()
                cg.remove()
        with contextlib.suppress(OSError):
            entry.rmdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write(path: str, data: bytes) -> None:
    """One write, as the kernel wants a cgroup file written (``O_CREAT``/``O_TRUNC``, as
    ``Path.write_text`` opens it, are no-ops on a cgroup filesystem)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _keyed(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        for line in _read(path).splitlines():
            key, _, value = line.partition(b" ")
            with contextlib.suppress(ValueError):
                out[key.decode()] = int(value)
    return out


def _int(path: str) -> int:
    try:
        return int(_read(path).split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _try_write(path: Path, value: str) -> None:
    with contextlib.suppress(FileNotFoundError, PermissionError):
        path.write_text(value)
