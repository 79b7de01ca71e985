"""The dev stack for real: nats-server, Postgres and the five services as processes."""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from fake_providers import FakeProviders, reply_tool

from puras_cli import api
from puras_cli.client import ApiError
from puras_cli.config import parse_env_file
from puras_cli.devstack import Stack
from puras_cli.devstack.demo import run_demo
from puras_cli.devstack.proctree import ProcRef, descendants, is_alive, proc_ref
from puras_cli.devstack.repo import find_repo_root

pytestmark = [
    pytest.mark.integration,
    pytest.mark.e2e,
]


def _all_processes(stack: Stack) -> list[ProcRef]:
    """Every process of the stack now: services, their children, nats-server, Postgres."""
    pids = list(stack.service_pids().values())
    for server in (stack.nats, stack.postgres):
        if server is not None and server.proc is not None:
            pids.append(server.proc.pid)
    refs = []
    for pid in pids:
        ref = proc_ref(pid)
        assert ref is not None, pid
        refs += [ref, *descendants(pid)]
    return refs


def test_stack_serves_bootstraps_supervises_and_stops_clean(work_dir: Path) -> None:
    stack = Stack(work_dir / "stack", fsync=False)
    with stack:
        assert set(stack.service_pids()) == {
            "gateway",
            "projector",
            "scheduler",
            "runner",
            "billing",
            "drive",
        }
        for path in ("/healthz", "/readyz"):
            assert httpx.get(stack.api_base + path, timeout=5).status_code == 200
        assert stack.nats_address.startswith("nats://127.0.0.1:")
        assert stack.database_url.endswith("/puras")
        assert {p.name for p in stack.logs_dir.iterdir()} >= {
            "gateway.log",
            "projector.log",
            "scheduler.log",
            "runner.log",
            "billing.log",
            "drive.log",
        }

        project = stack.bootstrap_project("it", usd=3)
        assert project.api_key.startswith("puras_live_")
        with stack.client(project.api_key) as client:
            assert client.get("/v1/deployments") == {"deployments": []}
        with stack.client("puras_live_nope.notakeynotakeynotakey") as bad:
            with pytest.raises(ApiError) as info:
                bad.get("/v1/deployments")
            assert info.value.status == 401

        # A crash: expected by the stack (it did it), so not reported as an exit.
        before = stack.service_pids()
        stack.kill_service("gateway")
        assert "gateway" not in stack.service_pids()
        assert stack.wait_for_exit(timeout=0.2) is None
        stack.start_service("gateway")
        assert stack.service_pids()["gateway"] != before["gateway"]
        with stack.client(project.api_key) as client:  # state came back from the log
            assert client.get("/v1/deployments") == {"deployments": []}

        stack.restart_service("scheduler")
        assert stack.service_pids()["scheduler"] != before["scheduler"]
        assert stack.add_runner() == "runner-2"
        assert "runner-2" in stack.service_pids()

        # A death the stack did not cause is reported by name.
        os.killpg(stack.service_pids()["billing"], signal.SIGKILL)
        assert stack.wait_for_exit(timeout=30) == "billing"
        assert "billing was killed by SIGKILL" in stack.describe_exit("billing")

        running = _all_processes(stack)
    assert all(not is_alive(r) for r in running), [r for r in running if is_alive(r)]
    assert stack.service_pids() == {}
    stack.stop()  # idempotent


def test_stop_ends_what_the_runner_started_in_other_sessions(work_dir: Path) -> None:
    """The runner keeps a warm template process per deployment in a session of its own
    (ARCHITECTURE §5): out of reach of a signal to the runner's group, still stopped."""
    examples = find_repo_root() / "examples"
    with Stack(work_dir / "stack", fsync=False) as stack:
        project = stack.bootstrap_project("jobs")
        with stack.client(project.api_key) as client:
            api.push_bundle(client, api.pack(examples / "quickstart"))
            job = api.submit_job(client, "echo", {"text": "x"}, wait=True, timeout=60)
        assert job["status"] == "succeeded", job
        assert job["result"] == {"echoed": "x"}
        runner = stack.service_pids()["runner"]
        below = descendants(runner)
        assert any(os.getsid(r.pid) != os.getsid(runner) for r in below), below
        running = _all_processes(stack)
    assert all(not is_alive(r) for r in running), [r for r in running if is_alive(r)]


def test_two_stacks_side_by_side(work_dir: Path) -> None:
    with Stack(work_dir / "a", fsync=False) as a, Stack(work_dir / "b", fsync=False) as b:
        assert a.api_base != b.api_base
        assert a.nats_url != b.nats_url
        assert a.database_url != b.database_url
        assert a.admin_token != b.admin_token
        pa = a.bootstrap_project("a")
        pb = b.bootstrap_project("b")
        with a.client(pa.api_key) as client:
            assert client.get("/v1/deployments") == {"deployments": []}
        # Each stack has its own log: a key of one is unknown to the other.
        with b.client(pa.api_key) as client, pytest.raises(ApiError) as info:
            client.get("/v1/deployments")
        assert info.value.status == 401
        with b.client(pb.api_key) as client:
            assert client.get("/v1/deployments") == {"deployments": []}
        running = _all_processes(a) + _all_processes(b)
    assert all(not is_alive(r) for r in running)


def test_dev_demo_runs_every_job_and_leaves_nothing() -> None:
    """`./dev demo` end to end with a model provider configured (a scripted fake of the
    OpenAI API at OPENAI_BASE_URL, as a local Ollama would be): both examples pushed, the
    deterministic jobs and the agentic hello and caption succeed (image-info's first run
    installs Pillow from PyPI into the deployment's venv). Without a provider the demo
    prints one line instead of the agentic jobs (tests/unit/cli/test_cli_demo_parts.py)."""
    lines: list[str] = []

    def echo(message: str = "", **_: object) -> None:
        lines.append(message)

    before = set(Path(tempfile.gettempdir()).glob("puras-demo-*"))
    with FakeProviders.in_thread() as fake:
        fake.openai.script(
            reply_tool("set_output", {"answer": "A backend that runs agents."}, text="Sure."),
            reply_tool("set_output", {"caption": "Sunset gradients, zero filters, all vibes."}),
        )
        environ = {"OPENAI_BASE_URL": fake.openai_base_url, "OPENAI_API_KEY": "sk-demo-test"}
        code = run_demo(find_repo_root(), echo=echo, environ=environ)
        requests = fake.openai.requests
    text = "\n".join(lines)
    assert code == 0, text
    for label in ("echo (async)", "echo (sync)", "image-info (sync)"):
        assert f"ok {label}" in text, text
    assert '"echoed": "hello from ./dev demo"' in text
    assert '"width": 64' in text
    assert '"height": 48' in text
    # The agentic examples ran on the configured provider, routed by the demo's file.
    assert "ok hello (agent)" in text, text
    assert "ok caption (agent)" in text, text
    assert '"answer": "A backend that runs agents."' in text
    assert "agent_start: model claude/sonnet-4-6 (openai)" in text, text
    assert 'tool_call: step 1: set_output {"caption":' in text, text
    assert "routed to 'llama3.2'" in text, text
    assert [r["model"] for r in requests] == ["llama3.2", "llama3.2"]
    # caption's model saw the PNG as an image block of its first user message.
    first_user = next(m for m in requests[1]["messages"] if m["role"] == "user")
    assert any(part.get("type") == "image_url" for part in first_user["content"]), first_user
    assert "sk-demo-test" not in text
    # A demo that succeeded leaves no work dir behind (another demo running meanwhile
    # may remove its own, hence no new one rather than the same set).
    assert set(Path(tempfile.gettempdir()).glob("puras-demo-*")) <= before


class _DevUp:
    """`puras dev up` as a subprocess, its output collected line by line by a thread
    (a blocking read per line; select() on a buffered pipe misses buffered lines)."""

    def __init__(self, root: Path) -> None:
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "puras"), "dev", "up"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)  # end of output: it exited

    def read_until(self, marker: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                # SIGTERM, never SIGKILL: `dev up` must live to stop its stack.
                self.proc.terminate()
                self.proc.wait(timeout=60)
                raise AssertionError(f"no {marker!r} in the output:\n{''.join(self.seen)}")
            self.seen.append(line)
            if marker in line:
                return "".join(self.seen)

    def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


def test_dev_up_writes_dev_env_and_keeps_its_project_across_restarts(work_dir: Path) -> None:
    root = work_dir
    # A checkout as `puras dev up` recognises one: the directory holding ./dev.
    (root / "dev").write_text("#!/bin/sh\n")
    (root / "justfile").write_text("")
    dev_env = root / ".puras" / "dev.env"
    puras = Path(sys.executable).parent / "puras"

    up = _DevUp(root)
    try:
        banner = up.read_until("source .puras/dev.env", timeout=120)
        assert "(new, key puras_live_" in banner
        assert stat.S_IMODE(dev_env.stat().st_mode) == 0o600
        first = parse_env_file(dev_env.read_text())
        assert set(first) == {
            "PURAS_API_BASE",
            "PURAS_API_KEY",
            "PURAS_PROJECT_ID",
            "PURAS_ADMIN_TOKEN",
            "PURAS_NATS_URL",
            "PURAS_DATABASE_URL",
        }
        # The CLI finds dev.env from a subdirectory, with nothing in its environment.
        (root / "sub").mkdir()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PURAS_")}
        listed = subprocess.run(
            [str(puras), "deployments", "list", "-o", "json"],
            cwd=root / "sub",
            env=clean,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout) == {"deployments": []}
        # A second `dev up` in the same checkout is refused and leaves dev.env alone.
        second = subprocess.run(
            [str(puras), "dev", "up"], cwd=root, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 1
        assert "a stack is already running" in second.stderr
        assert dev_env.exists()
    finally:
        code = up.stop(signal.SIGTERM)
    assert code == 0, "".join(up.seen)
    assert not dev_env.exists()  # it would point at a dead stack

    up = _DevUp(root)
    try:
        banner = up.read_until("source .puras/dev.env", timeout=120)
        again = parse_env_file(dev_env.read_text())
        assert f"{first['PURAS_PROJECT_ID']} (reused" in banner
        # Same project, key, admin token, and API port (it was free); the servers behind
        # it get fresh ports each start, so their URLs may differ.
        stable = ("PURAS_API_BASE", "PURAS_API_KEY", "PURAS_PROJECT_ID", "PURAS_ADMIN_TOKEN")
        assert {k: again[k] for k in stable} == {k: first[k] for k in stable}
    finally:
        code = up.stop(signal.SIGINT)
    assert code == 0, "".join(up.seen)
    assert not (root / ".puras" / "stack" / "stack.pids").exists()
