"""Attacks from inside a job on the platform and on other tenants: each test is job code
trying to break out, against a real runner (as root, so with the full sandbox) and a real
nats-server. What must hold: a job sees nothing of the platform and nothing of other
projects, cannot reach any service, cannot keep anything running after it ends, and
hits limits as a whole."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from runner_helpers import Harness, StartRunner, eventually, processes_with, skill_files

from puras_common.ids import new_id

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the job sandbox needs a root runner"),
]


async def _result(harness: Harness, files: dict[str, str], skill: str, **inputs: Any) -> Any:
    dep = await harness.deploy(files)
    watch = await harness.run(dep, skill, inputs)
    done = watch.of("job.succeeded")
    assert done, watch.of("job.failed")[0].error if watch.of("job.failed") else watch.events
    return done[0].result


PROBE = """
import ctypes, errno, os, socket

def _try(fn):
    try:
        fn()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))

def _connect(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect((host, port))
    finally:
        s.close()

def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()

def _write(path):
    with open(path, "w") as f:
        f.write("x")

def run(inputs):
    libc = ctypes.CDLL(None, use_errno=True)
    def _sys(ret):
        return "ok" if ret == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    out = {
        "uid": os.getuid(),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "cap_eff": _status("CapEff"),
        "cap_bnd": _status("CapBnd"),
        "no_new_privs": _status("NoNewPrivs"),
        "seccomp": _status("Seccomp"),
        "runner_environ": _try(lambda: open(f"/proc/{inputs['runner_pid']}/environ").read()),
        "runner_root": _try(lambda: os.listdir(f"/proc/{inputs['runner_pid']}/root")),
        "data_dir_visible": os.path.exists(inputs["data_dir"]),
        "drive_root_visible": os.path.exists(inputs["drive_root"]),
        "source_visible": os.path.exists(inputs["source"]),
        "root_home": os.path.exists("/root/.bash_history") or os.path.isdir("/home"),
        "shadow": _try(lambda: open("/etc/shadow").read()),
        "nats": _try(lambda: _connect(inputs["nats_host"], inputs["nats_port"])),
        "metadata": _try(lambda: _connect("169.254.169.254", 80)),
        "public": _try(lambda: _connect("1.1.1.1", 443)),
        "write_bundle": _try(lambda: _write("/bundle/skills/probe/evil.py")),
        "write_venv_pth": _try(lambda: _write(inputs["site"] + "/evil.pth")),
        "write_usr": _try(lambda: _write("/usr/lib/evil")),
        "write_root": _try(lambda: _write("/evil")),
        "unshare_user": _sys(libc.unshare(0x10000000)),
        "unshare_net": _sys(libc.unshare(0x40000000)),
        "mount_tmpfs": _sys(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)),
        "ptrace_template": _sys(libc.ptrace(16, inputs["runner_pid"], None, None)),
        "chroot": _sys(libc.chroot(b"/tmp")),
        "kill_runner": _try(lambda: os.kill(inputs["runner_pid"], 0)),
        "setuid_root": _try(lambda: os.setuid(0)),
        "devices": sorted(os.listdir("/dev")),
        # What this process (forked from its template) was started with.
        "cmdline": open("/proc/self/cmdline", "rb").read().decode(errors="replace"),
    }
    return out
"""


async def test_a_job_sees_nothing_of_the_platform(harness: Harness, start: StartRunner) -> None:
    runner = await start()
    nats = urlsplit(harness.nats_url)
    site = f"/venv/lib/python3.{sys.version_info.minor}/site-packages"
    r = await _result(
        harness,
        skill_files("probe", PROBE),
        "probe",
        runner_pid=os.getpid(),
        data_dir=str(runner.settings.data_dir),
        drive_root=str(runner.settings.drive_root),
        source=str(Path(__file__).resolve().parents[3]),
        nats_host=nats.hostname,
        nats_port=nats.port,
        site=site,
    )
    # An unprivileged uid in a pid namespace of its own: the only process there.
    assert r["uid"] != 0
    assert r["pids"] == [1]
    assert r["cap_eff"] == "0000000000000000"
    assert r["cap_bnd"] == "0000000000000000"
    assert (r["no_new_privs"], r["seccomp"]) == ("1", "2")
    # Not the runner's environment, root, disk, data dir, other drives or the source tree.
    assert r["runner_environ"] == "ENOENT"
    assert r["runner_root"] == "ENOENT"
    assert r["kill_runner"] == "ESRCH"
    assert not r["data_dir_visible"]
    assert not r["drive_root_visible"]
    assert not r["source_visible"]
    # Nor their names: the command line a job inherits holds no host path.
    for host_path in (runner.settings.data_dir, runner.settings.drive_root):
        assert str(host_path) not in r["cmdline"], r["cmdline"]
    assert not r["root_home"]
    assert r["shadow"] == "ENOENT"
    # No service, no metadata address: a network namespace with loopback only.
    assert r["nats"] in ("ECONNREFUSED", "ENETUNREACH")
    assert r["metadata"] == "ENETUNREACH"
    # Read-only code: the bundle, the (shared) venv, the system, the jail's own root.
    assert r["write_bundle"] == "EROFS"
    assert r["write_venv_pth"] == "EROFS"
    assert r["write_usr"] == "EROFS"
    assert r["write_root"] == "EROFS"
    # No way to build a sandbox of its own or to get out of this one.
    for attempt in ("unshare_user", "unshare_net", "mount_tmpfs", "ptrace_template", "chroot"):
        assert r[attempt] == "EPERM", (attempt, r[attempt])
    assert r["setuid_root"] in ("EPERM", "EINVAL")  # root is not even mapped
    assert r["devices"] == sorted(
        ["fd", "full", "null", "random", "shm", "stderr", "stdin", "stdout", "urandom", "zero"]
    )


DRIVE = """
import os

def run(inputs):
    with open("drive/mine.txt", "w") as f:
        f.write(inputs["secret"])
    return {"drive": sorted(os.listdir("/drive")), "uid": os.stat("drive/mine.txt").st_uid}
"""


async def test_projects_see_only_their_own_drive(harness: Harness, start: StartRunner) -> None:
    runner = await start()
    a = await harness.deploy(skill_files("drive", DRIVE), project_id=new_id())
    b = await harness.deploy(skill_files("drive", DRIVE), project_id=new_id())
    wa = await harness.run(a, "drive", {"secret": "alpha"})
    wb = await harness.run(b, "drive", {"secret": "beta"})
    ra, rb = wa.of("job.succeeded")[0].result, wb.of("job.succeeded")[0].result
    assert ra["drive"] == ["mine.txt"]
    assert rb["drive"] == ["mine.txt"]
    drive_root = runner.settings.drive_root
    assert (drive_root / a.project_id / "mine.txt").read_text() == "alpha"
    assert (drive_root / b.project_id / "mine.txt").read_text() == "beta"
    # Each project under a host uid of its own, neither root nor the runner's.
    ua = (drive_root / a.project_id / "mine.txt").stat().st_uid
    ub = (drive_root / b.project_id / "mine.txt").stat().st_uid
    assert ua != ub
    assert 0 not in (ua, ub)


DAEMON = """
import os, time

def run(inputs):
    marker = inputs["marker"]
    if inputs.get("spawn"):
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                # A daemon: double fork, its own session, the job's stdio closed.
                for fd in (0, 1, 2):
                    os.close(fd)
                open("/tmp/left-behind", "w").write("x")
                open("/job/left-behind", "w").write("x")
                os.execvp("sleep", ["sleep", marker])
            os._exit(0)
        os.wait()
        time.sleep(0.2)
        return {"spawned": True}
    return {
        "tmp": sorted(os.listdir("/tmp")),
        "job": sorted(os.listdir("/job")),
        "pids": sorted(p for p in os.listdir("/proc") if p.isdigit()),
    }
"""


async def test_nothing_of_a_job_outlives_it(harness: Harness, start: StartRunner) -> None:
    await start()
    marker = f"4242.{os.getpid()}{id(harness) % 1000}"
    dep = await harness.deploy(skill_files("daemon", DAEMON))
    first = await harness.run(dep, "daemon", {"marker": marker, "spawn": True})
    assert first.of("job.succeeded")
    await eventually(lambda: not processes_with(f"sleep {marker}"), what="daemon gone")
    second = await harness.run(dep, "daemon", {"marker": marker})
    assert second.of("job.succeeded")[0].result == {
        "tmp": [],
        "job": ["drive"],
        "pids": ["1"],
    }


RANDOM = """
import random, ssl

DRAWN_AT_IMPORT = random.random()

def run(inputs):
    return {"py": random.random(), "ssl": ssl.RAND_bytes(16).hex()}
"""


async def test_each_job_has_its_own_random_state(harness: Harness, start: StartRunner) -> None:
    await start()
    dep = await harness.deploy(skill_files("rng", RANDOM))
    results = []
    for _ in range(3):
        watch = await harness.run(dep, "rng")
        results.append(watch.of("job.succeeded")[0].result)
    assert len({r["py"] for r in results}) == 3
    assert len({r["ssl"] for r in results}) == 3


FORK_BOMB = """
import os, time

def run(inputs):
    children = 0
    try:
        while True:
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            children += 1
    except OSError as exc:
        raise RuntimeError(f"stopped after {children} children: {exc}") from None
"""

MEMORY_TOGETHER = """
import subprocess, sys

def run(inputs):
    hog = ("import time; b = bytearray(150 * 1024 * 1024); "
           "b[::4096] = b'x' * len(b[::4096]); time.sleep(2)")
    procs = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(5)]
    codes = [p.wait() for p in procs]
    return {"codes": codes}
"""

OK = "def run(inputs):\n    return {'ok': True}\n"


async def test_limits_hold_for_the_job_as_a_whole(harness: Harness, start: StartRunner) -> None:
    runner = await start(memory_limit_mb=256, job_max_processes=64)
    if (
        not runner.runner.engine.templates.cgroups
        or not runner.runner.engine.templates.cgroups.enabled
    ):
        pytest.skip("no per-job cgroups on this host")
    dep = await harness.deploy(
        {
            **skill_files("bomb", FORK_BOMB),
            **skill_files("together", MEMORY_TOGETHER),
            **skill_files("ok", OK),
        }
    )
    bomb = await harness.run(dep, "bomb", timeout_seconds=20)
    error = bomb.of("job.failed")[0].error
    assert error.startswith("RuntimeError: stopped after")
    assert "limit of 64 processes" in error
    # Five processes of 150 MB each: fine one by one, not together under 256 MB.
    together = await harness.run(dep, "together", timeout_seconds=20)
    failed = together.of("job.failed")
    if failed:
        assert "memory limit of 256 MB" in failed[0].error
    else:
        codes = together.of("job.succeeded")[0].result["codes"]
        assert -9 in codes, codes  # the kernel killed some of them at the limit
    # And the runner keeps serving.
    ok = await harness.run(dep, "ok")
    assert ok.of("job.succeeded")[0].result == {"ok": True}


async def test_concurrent_jobs_of_one_project_do_not_see_each_other(
    harness: Harness, start: StartRunner
) -> None:
    await start(slots=2)
    code = """
    import os, time

    def run(inputs):
        open("/job/mine-" + inputs["name"], "w").write("x")
        open("/tmp/mine-" + inputs["name"], "w").write("x")
        os.makedirs("drive/sync", exist_ok=True)
        open("drive/sync/" + inputs["name"], "w").close()
        deadline = time.monotonic() + 20
        while len(os.listdir("drive/sync")) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        return {"job": sorted(os.listdir("/job")), "tmp": sorted(os.listdir("/tmp")),
                "pids": sorted(p for p in os.listdir("/proc") if p.isdigit())}
    """
    dep = await harness.deploy(skill_files("pair", code))
    watches = [await harness.submit(dep, "pair", {"name": n}) for n in ("a", "b")]
    await asyncio.gather(*(w.terminal() for w in watches))
    for name, watch in zip(("a", "b"), watches, strict=True):
        r = watch.of("job.succeeded")[0].result
        assert r == {"job": ["drive", f"mine-{name}"], "tmp": [f"mine-{name}"], "pids": ["1"]}


EGRESS = """
import os, urllib.error, urllib.request

def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as resp:
            return [resp.status, resp.read().decode()]
    except urllib.error.HTTPError as exc:
        return [exc.code, exc.reason]
    except urllib.error.URLError as exc:
        return [0, str(exc.reason)]

def run(inputs):
    from puras import PurasError, load_bytes
    def sdk(url):
        try:
            return load_bytes({"url": url}).decode()
        except PurasError as exc:
            return "refused: " + str(exc)
    allowed = inputs["allowed"]
    return {
        "proxy": os.environ.get("HTTPS_PROXY"),
        "allowed": _get(allowed),
        "sdk_allowed": sdk(allowed),
        "loopback_nats": _get(f"http://127.0.0.1:{inputs['nats_port']}/"),
        "loopback_via_proxy": _get("http://127.0.0.3/"),
        "metadata": _get("http://169.254.169.254/latest/meta-data/"),
        "private": _get("http://10.0.0.1/"),
        "sdk_metadata": sdk("http://169.254.169.254/latest/meta-data/"),
        "other_port": _get(allowed.rsplit(":", 1)[0] + ":8081/"),
    }
"""


async def _http_server(host: str) -> tuple[asyncio.AbstractServer, int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, host, 0)
    return server, server.sockets[0].getsockname()[1]


async def test_egress_goes_through_the_ssrf_policy(harness: Harness, start: StartRunner) -> None:
    server, port = await _http_server("127.0.0.2")
    async with server:
        # A destination the operator allows (standing in for a public server: this
        # machine has no internet), and everything else refused.
        await start(egress_allow_networks=["127.0.0.2/32"], egress_ports=[80, 443, port])
        nats = urlsplit(harness.nats_url)
        r = await _result(
            harness,
            skill_files("egress", EGRESS),
            "egress",
            nats_port=nats.port,
            allowed=f"http://127.0.0.2:{port}/",
        )
    assert r["proxy"] == "http://127.0.0.1:3128"
    assert r["allowed"] == [200, "hello"]
    assert r["sdk_allowed"] == "hello"
    # The job's loopback is its own (NATS is not there); through the proxy, every
    # non-public address is refused with the reason.
    assert r["loopback_nats"][0] == 0
    assert "refused" in r["loopback_nats"][1]
    assert r["loopback_via_proxy"][0] == 403
    assert "loopback" in r["loopback_via_proxy"][1]
    assert r["metadata"][0] == 403
    assert "link-local" in r["metadata"][1]
    assert r["private"][0] == 403
    assert "private" in r["private"][1]
    assert r["other_port"][0] == 403
    assert "port 8081" in r["other_port"][1]
    assert "169.254.169.254" in r["sdk_metadata"]
    assert "link-local" in r["sdk_metadata"]


async def test_egress_off_means_no_network_at_all(harness: Harness, start: StartRunner) -> None:
    server, port = await _http_server("127.0.0.2")
    async with server:
        await start(job_egress="off", egress_allow_networks=["127.0.0.2/32"])
        r = await _result(
            harness,
            skill_files("egress", EGRESS),
            "egress",
            nats_port=urlsplit(harness.nats_url).port,
            allowed=f"http://127.0.0.2:{port}/",
        )
    assert r["proxy"] is None
    assert r["allowed"][0] == 0
    assert r["metadata"][0] == 0


NAP = """
import time

def run(inputs):
    print("napping", flush=True)
    time.sleep(inputs["seconds"])
    return {}
"""


async def test_projects_sharing_a_uid_still_see_nothing_of_each_other(
    harness: Harness, start: StartRunner
) -> None:
    """Project uids come from a hash: two projects can share one. With a span of 1 every
    project does, and still neither sees the other's processes (each template has a pid
    namespace of its own, each job another)."""
    await start(sandbox_uid_span=1)
    victim = await harness.deploy(skill_files("nap", NAP), project_id=new_id())
    napping = await harness.submit(victim, "nap", {"seconds": 4})
    await napping.until(lambda r: r.type == "job.log")
    # The attacker's module scans /proc when the template imports it, and again in a job.
    code = (
        "import os\n"
        "def _scan(marker):\n"
        "    seen, found = [], []\n"
        "    for pid in os.listdir('/proc'):\n"
        "        if not pid.isdigit():\n"
        "            continue\n"
        "        seen.append(pid)\n"
        "        for name in ('environ', 'cmdline'):\n"
        "            try:\n"
        "                with open(f'/proc/{pid}/{name}', 'rb') as f:\n"
        "                    if MARKER.encode() in f.read():\n"
        "                        found.append(pid)\n"
        "            except OSError:\n"
        "                pass\n"
        "    return sorted(seen, key=int), found\n"
        f"MARKER = {victim.deployment_id!r}\n"
        "AT_IMPORT = _scan(MARKER)\n"
        "def run(inputs):\n"
        "    return {'template': AT_IMPORT, 'job': _scan(MARKER)}\n"
    )
    attacker = await harness.deploy(skill_files("scan", code), project_id=new_id())
    watch = await harness.run(attacker, "scan")
    r = watch.of("job.succeeded")[0].result
    (t_seen, t_found), (j_seen, j_found) = r["template"], r["job"]
    assert t_found == []
    assert j_found == []
    # The template's namespace holds the template itself (pid 1) and, later, its own
    # children only; at import time, nothing else at all.
    assert t_seen == ["1"]
    assert j_seen == ["1"]
    await napping.terminal()


HOARD = """
import socket

def run(inputs):
    held, cut = [], 0
    for _ in range(100):
        s = socket.create_connection(("127.0.0.1", 3128), timeout=5)
        held.append(s)
    # The proxy closes what it will not serve: those read EOF; the rest wait for a
    # request. Look until the cut ones are all in (bounded), or the cap failed.
    import select, time
    for s in held:
        s.setblocking(False)
    closed = set()
    deadline = time.monotonic() + 10
    quiet = False
    while time.monotonic() < deadline and not (quiet and len(closed) >= 100 - 64):
        readable, _, _ = select.select([s for s in held if s not in closed], [], [], 0.5)
        quiet = not readable
        for s in readable:
            if s.recv(1) == b"":
                closed.add(s)
    cut = len(closed)
    for s in held:
        s.close()
    return {"cut": cut}
"""


async def test_a_job_cannot_use_up_the_runners_connections(
    harness: Harness, start: StartRunner
) -> None:
    await start()
    r = await _result(harness, skill_files("hoard", HOARD), "hoard")
    assert r["cut"] == 100 - 64
