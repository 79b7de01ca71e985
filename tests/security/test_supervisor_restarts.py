"""`puras dev up` keeps its stack serving when a service crashes.

A service killed with SIGKILL from outside (as the OOM killer or a crash would) is
reported with how it ended and its log, started again, and serves; the stack is not torn
down. Ctrl-C afterwards still stops everything.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from puras_cli.config import parse_env_file
from puras_cli.devstack.proctree import is_alive, proc_ref
from puras_cli.devstack.stack import claim_work_dir

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def checkout() -> Iterator[Path]:
    """A directory `puras dev up` takes for a checkout (it holds ./dev and a justfile),
    outside pytest's tmp tree (Postgres must traverse its parents)."""
    root = Path(tempfile.mkdtemp(prefix="puras-supervise-"))
    (root / "dev").write_text("#!/bin/sh\n")
    (root / "justfile").write_text("")
    try:
        yield root
    finally:
        for pids in root.rglob("stack.pids"):
            claim_work_dir(pids.parent)
        shutil.rmtree(root, ignore_errors=True)


class DevUp:
    """`puras dev up` as a subprocess; its output read line by line by a thread."""

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
        self.lines.put(None)

    def read_until(self, marker: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        start = len(self.seen)
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no {marker!r} in the output:\n{''.join(self.seen)}")
            self.seen.append(line)
            if marker in line:
                return "".join(self.seen[start:])

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=90)


def _pids(root: Path) -> dict[str, list[int]]:
    return json.loads((root / ".puras" / "stack" / "stack.pids").read_text())  # type: ignore[no-any-return]


def test_a_killed_service_comes_back_and_serves(checkout: Path) -> None:
    up = DevUp(checkout)
    try:
        up.read_until("source .puras/dev.env", timeout=180)
        env = parse_env_file((checkout / ".puras" / "dev.env").read_text())
        before = _pids(checkout)
        old = before["gateway"][0]
        old_ref = proc_ref(old)
        assert old_ref is not None

        os.killpg(old, signal.SIGKILL)  # from outside the stack: a crash
        out = up.read_until("gateway restarted and ready", timeout=120)
        assert "gateway was killed by SIGKILL" in out
        assert "last lines of" in out  # the tail of its log
        assert "restarting gateway in 0.5s" in out
        assert up.proc.poll() is None  # the stack was not torn down

        now = _pids(checkout)
        assert now["gateway"][0] != old
        assert not is_alive(old_ref)
        # The other services were left alone.
        assert {k: v for k, v in now.items() if k != "gateway"} == {
            k: v for k, v in before.items() if k != "gateway"
        }
        r = httpx.get(env["PURAS_API_BASE"] + "/readyz", timeout=10)
        assert r.status_code == 200, r.text
        r = httpx.get(
            env["PURAS_API_BASE"] + "/v1/deployments",
            headers={"Authorization": f"Bearer {env['PURAS_API_KEY']}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text  # the dev project's key still opens it

        # A second crash of another service: also restarted.
        os.killpg(now["billing"][0], signal.SIGKILL)
        up.read_until("billing restarted and ready", timeout=120)
        final = _pids(checkout)
    finally:
        code = up.stop()
    assert code == 0, "".join(up.seen)
    # Ctrl-C left nothing running, restarted services included.
    for name, (pid, ticks) in final.items():
        if name == "_owner":
            continue
        ref = proc_ref(pid)
        assert ref is None or ref.start_ticks != ticks, f"{name} ({pid}) still runs"
