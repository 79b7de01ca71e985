"""Per-job cgroups on both kernel interfaces, against a folder laid out like a cgroup
filesystem (the real v1 hierarchy is exercised by the sandbox's attack tests; hosts with
cgroup v2 get the same code as here)."""

from __future__ import annotations

from pathlib import Path

from puras_runner.adapters.cgroups import CgroupLimits, JobCgroups, Usage

LIMITS = CgroupLimits(memory_bytes=256 << 20, pids=64, cpus=0.5)


def _v2_tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    own = root / "kubepods" / "pod1"
    own.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text("4242\n")
    self_cgroup = tmp_path / "self-cgroup"
    self_cgroup.write_text("0::/kubepods/pod1\n")
    return root, self_cgroup


def test_v2_moves_the_runner_into_a_leaf_and_limits_each_job(tmp_path: Path) -> None:
    root, self_cgroup = _v2_tree(tmp_path)
    cgroups = JobCgroups.detect("host", LIMITS, root=root, self_cgroup=self_cgroup)
    assert cgroups.version == 2, cgroups.reason
    own = root / "kubepods" / "pod1"
    # No internal processes: the runner first moves into its leaf, then the controllers
    # go to the children, and jobs get a sibling folder of their own.
    assert (own / "runner" / "cgroup.procs").read_text() == "4242"
    assert (own / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert cgroups.parents == [own / "jobs"]
    cg = cgroups.create()
    assert cg is not None
    (path,) = cg.paths
    assert path.parent == own / "jobs"
    assert (path / "memory.max").read_text() == str(256 << 20)
    assert (path / "memory.swap.max").read_text() == "0"
    assert (path / "pids.max").read_text() == "64"
    assert (path / "cpu.max").read_text() == "50000 100000"
    cg.add(777)
    assert (path / "cgroup.procs").read_text() == "777"
    (path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    (path / "pids.events").write_text("max 0\n")
    usage = cg.usage()
    assert usage.oom_killed
    assert not usage.pids_refused
    cg.kill()
    assert (path / "cgroup.kill").read_text() == "1"


def test_emptied_cgroups_serve_the_next_job_with_fresh_counters(tmp_path: Path) -> None:
    root, self_cgroup = _v2_tree(tmp_path)
    cgroups = JobCgroups.detect("host", LIMITS, root=root, self_cgroup=self_cgroup)
    first = cgroups.acquire()
    assert first is not None
    (path,) = first.paths
    (path / "memory.events").write_text("oom_kill 2\n")
    (path / "pids.events").write_text("max 7\n")
    assert first.usage().oom_killed
    (path / "cgroup.procs").write_text("")  # its processes are gone
    assert cgroups.release(first)
    again = cgroups.acquire()
    assert again is first
    # What the previous job hit is not this job's.
    usage = again.usage()
    assert not usage.oom_killed
    assert not usage.pids_refused
    (path / "memory.events").write_text("oom_kill 3\n")
    assert again.usage().oom_killed
    # A cgroup that still holds a process is not reused.
    (path / "cgroup.procs").write_text("99999999\n")
    assert not cgroups.release(again)
    assert cgroups.acquire() is not again


def test_v2_without_delegated_controllers_says_why(tmp_path: Path) -> None:
    root, self_cgroup = _v2_tree(tmp_path)
    (root / "kubepods" / "pod1" / "cgroup.controllers").write_text("cpu\n")
    cgroups = JobCgroups.detect("host", LIMITS, root=root, self_cgroup=self_cgroup)
    assert not cgroups.enabled
    assert "memory" in cgroups.reason
    assert "pids" in cgroups.reason
    assert "unavailable" in cgroups.describe()
    assert cgroups.create() is None


def test_no_hierarchy_enforces_nothing_and_says_so(tmp_path: Path) -> None:
    cgroups = JobCgroups.detect("host", LIMITS, root=tmp_path / "none")
    assert not cgroups.enabled
    assert cgroups.create() is None
    assert "rlimits" in cgroups.describe()


def test_v1_counts_per_hierarchy_and_reuses_an_emptied_cgroup(tmp_path: Path) -> None:
    # (detect's probe needs a real cgroup filesystem: an rmdir of a folder with files.)
    parents = [tmp_path / c / "puras" / "host-1" for c in ("memory", "pids", "cpu")]
    for parent in parents:
        parent.mkdir(parents=True)
    cgroups = JobCgroups(1, parents, LIMITS)
    cg = cgroups.acquire()
    assert cg is not None
    mem, pids, cpu = cg.paths
    assert (mem / "memory.limit_in_bytes").read_text() == str(256 << 20)
    assert (pids / "pids.max").read_text() == "64"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    cg.add(777)
    assert [(p / "cgroup.procs").read_text() for p in cg.paths] == ["777"] * 3
    assert cg.pids() == [777]
    # The memory counters are in the memory hierarchy, refused forks in the pids one.
    (mem / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    (pids / "pids.events").write_text("max 2\n")
    (mem / "memory.max_usage_in_bytes").write_text("12345\n")
    assert cg.usage() == Usage(oom_killed=True, pids_refused=True, memory_peak_bytes=12345)
    for path in cg.paths:
        (path / "cgroup.procs").write_text("")  # its processes are gone
    # Killing an empty v1 cgroup is seeing it empty; released, it starts counting afresh.
    assert cg.kill()
    assert cgroups.release(cg, seen_empty=True)
    assert (mem / "memory.max_usage_in_bytes").read_text() == "0"
    assert cgroups.acquire() is cg
    assert cg.usage() == Usage(oom_killed=False, pids_refused=False, memory_peak_bytes=0)
