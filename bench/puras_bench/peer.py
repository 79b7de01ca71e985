"""The Celery + Redis peer: its venv, its redis-server, its worker and its HTTP front.

Configuration (that of the reference peer benchmark, not tuned either way):

* redis-server from Debian, on a free loopback port, ``--save "" --appendonly no``;
* ``celery worker --pool=prefork --concurrency=2 --without-gossip --without-mingle
  --without-heartbeat``, JSON serializers, Redis as broker and result backend;
* a FastAPI app under uvicorn (one process) with a sync ``POST /run`` doing
  ``noop.apply_async((x,)).get(timeout=10)`` and ``POST /echo`` (the HTTP floor).

Its Python packages live in a venv of their own (``.puras/bench/peers-venv``), made on
first use with the uv binary of our venv; nothing is installed into the workspace.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from puras_bench.load import Call

__all__ = [
    "PEER_PACKAGES",
    "Peer",
    "PeerUnavailable",
    "ensure_peer_venv",
    "ensure_redis",
    "started_peer",
]

REPO = Path(__file__).resolve().parents[2]
PEER_APP = Path(__file__).resolve().parent.parent / "peer_app"
PEERS_VENV = REPO / ".puras" / "bench" / "peers-venv"
PEER_PACKAGES = ("celery[redis]", "redis", "fastapi", "uvicorn", "httpx")
_IMPORTS = "import celery, redis, fastapi, uvicorn, httpx"


class PeerUnavailable(RuntimeError):
    """The peer cannot run on this machine (no redis-server, no venv); says why."""


Log = Callable[[str], None]


def _uv_bin() -> str:
    cand = Path(sys.executable).parent / "uv"
    if cand.exists():
        return str(cand)
    found = shutil.which("uv")
    if found is None:
        raise PeerUnavailable("no uv binary next to this Python or on PATH (run ./dev once)")
    return found


def ensure_peer_venv(log: Log, venv: Path = PEERS_VENV) -> Path:
    """The peer venv's python, creating the venv and installing its packages if needed."""
    py = venv / "bin" / "python"
    if py.exists():
        ok = subprocess.run([str(py), "-c", _IMPORTS], capture_output=True, check=False)
        if ok.returncode == 0:
            return py
    uv = _uv_bin()
    if not py.exists():
        log(f"creating the peer venv {venv} (uv venv)")
        venv.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(
            [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            raise PeerUnavailable(f"uv venv {venv} failed: {r.stderr.strip()[-800:]}")
    log(f"installing {' '.join(PEER_PACKAGES)} into the peer venv (uv pip install)")
    r = subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(py), *PEER_PACKAGES],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        raise PeerUnavailable(f"uv pip install into {venv} failed: {r.stderr.strip()[-800:]}")
    return py


def ensure_redis(log: Log) -> str:
    """Path of redis-server, installing the Debian package when it is missing (as root)."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise PeerUnavailable(
            "redis-server is not installed and this is not root on a Debian-like system: "
            "install it (apt-get install redis-server) to run the Celery peer"
        )
    log("redis-server is missing: installing the Debian package (apt-get install -y redis-server)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"],
    ):
        r = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if r.returncode != 0:
            raise PeerUnavailable(f"{' '.join(argv)} failed: {r.stderr.strip()[-800:]}")
    # Debian's package may start a system redis on 6379 (where systemd runs): the bench
    # runs its own on a free port, so stop the one the install started.
    if shutil.which("systemctl") is not None:
        active = subprocess.run(
            ["systemctl", "is-active", "--quiet", "redis-server"], capture_output=True, check=False
        )
        if active.returncode == 0:
            log("stopping the system redis-server the package started (systemctl stop)")
            subprocess.run(["systemctl", "stop", "redis-server"], capture_output=True, check=False)
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        raise PeerUnavailable("apt-get installed redis-server but no binary was found")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerUnavailable(f"{what} exited with {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)  # only paces connection attempts while the port is closed
    raise PeerUnavailable(f"{what} not listening on {port} after {timeout:.0f}s")


@dataclass
class Peer:
    python: Path
    tmp: Path
    http_port: int = 0
    redis_url: str = ""
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs if p.poll() is None}

    def start(self, name: str, argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        # Its own session: the whole group (prefork children included) is ours to stop.
        p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kw,
        )
        log.close()
        self.procs.append((name, p))
        return p

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["PYTHONPATH"] = str(PEER_APP)
        env["PURAS_BENCH_REDIS_URL"] = self.redis_url
        env["PATH"] = f"{self.python.parent}{os.pathsep}{env.get('PATH', '')}"
        return env

    def stop(self) -> list[str]:
        """Stop everything (SIGTERM to each group, then SIGKILL); names of what needed a kill."""
        killed = []
        for name, p in reversed(self.procs):
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    killed.append(name)
            # Leftovers of the group (prefork children) go with a SIGKILL to the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        self.procs.clear()
        return killed

    def log_tails(self) -> dict[str, str]:
        out = {}
        for f in sorted(self.tmp.glob("*.log")):
            text = f.read_text(errors="replace")[-1500:]
            if text.strip():
                out[f.name] = text
        return out

    def versions(self) -> dict[str, Any]:
        code = (
            "import importlib.metadata as m, json\n"
            "def has(x):\n"
            "    try:\n        __import__(x); return True\n"
            "    except ImportError:\n        return False\n"
            "print(json.dumps({'packages': {p: m.version(p) for p in "
            "('celery','kombu','redis','fastapi','uvicorn','pydantic')},"
            "'uvicorn_loop': 'uvloop' if has('uvloop') else 'asyncio',"
            "'uvicorn_http': 'httptools' if has('httptools') else 'h11'}))"
        )
        r = subprocess.run(
            [str(self.python), "-c", code], capture_output=True, text=True, check=False
        )
        try:
            out: dict[str, Any] = json.loads(r.stdout)
        except ValueError:
            out = {"error": r.stderr[-500:]}
        redis_bin = shutil.which("redis-server") or "/usr/bin/redis-server"
        rv = subprocess.run([redis_bin, "--version"], capture_output=True, text=True, check=False)
        out["redis_server"] = rv.stdout.strip()
        return out


@contextlib.contextmanager
def started_peer(log: Log) -> Iterator[Peer]:
    """redis-server, the Celery worker and uvicorn, all up; stopped on the way out."""
    redis_bin = ensure_redis(log)
    python = ensure_peer_venv(log)
    tmp = Path(tempfile.mkdtemp(prefix="puras-bench-peer-"))
    peer = Peer(python=python, tmp=tmp)
    try:
        rport = _free_port()
        redis = peer.start(
            "redis-server",
            [
                redis_bin,
                "--port",
                str(rport),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],
        )
        _wait_port(rport, redis, "redis-server")
        peer.redis_url = f"redis://127.0.0.1:{rport}/0"
        env = peer.env()
        t0 = time.monotonic()
        peer.start(
            "celery-worker",
            [
                str(python),
                "-m",
                "celery",
                "-A",
                "celery_peer",
                "worker",
                "--pool=prefork",
                "--concurrency=2",
                "--loglevel=WARNING",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=PEER_APP,
            env=env,
        )
        peer.http_port = _free_port()
        uv = peer.start(
            "uvicorn",
            [
                str(python),
                "-m",
                "uvicorn",
                "--factory",
                "celery_peer:make_api",
                "--host",
                "127.0.0.1",
                "--port",
                str(peer.http_port),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            cwd=PEER_APP,
            env=env,
        )
        _wait_port(peer.http_port, uv, "uvicorn")
        # A first /run returns only once the worker consumes: that is the worker ready.
        with httpx.Client(base_url=peer.base_url, timeout=90) as http:
            r = http.post("/run", json={"x": 7})
            if r.status_code != 200 or r.json().get("result") != 7:
                raise PeerUnavailable(f"peer /run answered {r.status_code}: {r.text[:300]}")
        log(f"peer up in {time.monotonic() - t0:.1f}s: celery worker + uvicorn at {peer.base_url}")
        yield peer
    except PeerUnavailable:
        tails = peer.log_tails()
        if tails:
            log("peer logs:\n" + "\n".join(f"--- {k}\n{v}" for k, v in tails.items()))
        raise
    finally:
        killed = peer.stop()
        if killed:
            log(f"peer processes that ignored SIGTERM and were killed: {', '.join(killed)}")
        shutil.rmtree(tmp, ignore_errors=True)


def peer_calls(peer: Peer) -> tuple[Call, Call]:
    """``POST /run`` (the Celery round trip) and ``POST /echo`` (the HTTP floor)."""

    def body(i: int) -> dict[str, Any]:
        return {"x": i}

    def check(i: int, out: Any) -> None:
        if out.get("result") != i:
            raise RuntimeError(f"peer answered {out} for x={i}")

    run = Call(base_url=peer.base_url, path="/run", body=body, check=check, timeout_s=30)
    echo = Call(base_url=peer.base_url, path="/echo", body=body, check=check, timeout_s=30)
    return run, echo


def celery_direct(peer: Peer, n: int, warmup: int, total: int, clients: int) -> dict[str, Any]:
    """Celery without HTTP (context only): run in the peer venv against the same worker."""
    r = subprocess.run(
        [
            str(peer.python),
            str(PEER_APP / "celery_direct.py"),
            str(n),
            str(warmup),
            str(total),
            str(clients),
        ],
        capture_output=True,
        text=True,
        env=peer.env(),
        cwd=PEER_APP,
        timeout=600,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"celery_direct failed: {r.stderr.strip()[-800:]}")
    out: dict[str, Any] = json.loads(r.stdout)
    return out
