"""The runner as a process (``python -m puras_runner.entrypoints.main``): killed mid-job,
stopped with SIGTERM, started without NATS (J11)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from runner_helpers import Harness, eventually, processes_with, skill_files

from puras_cli.infra.ports import free_port
from puras_common.events import JobFailed, JobStarted, JobSucceeded

pytestmark = pytest.mark.integration

BLOCK_ON_FIRST_ATTEMPT = """
    import os, subprocess, time

    def run(inputs):
        if os.environ["PURAS_ATTEMPT"] == "1":
            child = subprocess.Popen(["sleep", "3600.271828"])
            print("pids", os.getpid(), child.pid, flush=True)
            time.sleep(3600)
        return {"attempt": os.environ["PURAS_ATTEMPT"]}
"""


class RunnerProcesses:
    def __init__(self, harness: Harness, tmp_path: Path) -> None:
        self.harness = harness
        self.tmp = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def env(self, name: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PURAS_")}
        env.update(
            PURAS_ENV="test",
            PURAS_NATS_URL=self.harness.nats_url,
            PURAS_RUNNER_POOL=self.harness.pool,
            PURAS_RUNNER_DATA_DIR=str(self.tmp / name),
            PURAS_RUNNER_DRIVE_ROOT=str(self.tmp / "drive"),
            PURAS_RUNNER_ACK_WAIT_S="2",
            PURAS_RUNNER_INSTANCE_ID=name,
            PURAS_LOG_FORMAT="json",
            PURAS_LOG_LEVEL="info",
        )
        env.update(extra)
        return env

    def start(self, name: str, **extra: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [sys.executable, "-m", "puras_runner.entrypoints.main"],
            env=self.env(name, **extra),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def runners(harness: Harness, tmp_path: Path) -> Iterator[RunnerProcesses]:
    procs = RunnerProcesses(harness, tmp_path)
    try:
        yield procs
    finally:
        procs.cleanup()


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    return await asyncio.to_thread(proc.wait, timeout)


async def test_a_job_of_a_killed_runner_runs_again_elsewhere(
    harness: Harness, runners: RunnerProcesses
) -> None:
    first = runners.start("runner-a", PURAS_RUNNER_MAX_ATTEMPTS="3")
    dep = await harness.deploy(skill_files("flaky", BLOCK_ON_FIRST_ATTEMPT))
    watch = await harness.submit(dep, "flaky")
    started = await watch.until(lambda r: r.type == "job.started", timeout=60)
    assert isinstance(started.event, JobStarted)
    assert (started.event.attempt, started.event.runner_id) == (1, "runner-a")
    await watch.until(lambda r: r.type == "job.log")
    assert processes_with("sleep 3600.271828"), "the job's own child should be running"
    templates = processes_with(str(runners.tmp / "runner-a"))
    assert templates, "runner-a's template should be running"

    first.send_signal(signal.SIGKILL)
    await _wait_exit(first)
    # The runner's death takes its template, the job's process and what that started.
    await eventually(
        lambda: not processes_with(str(runners.tmp / "runner-a")),
        what="runner-a's template and children gone",
    )
    await eventually(
        lambda: not processes_with("sleep 3600.271828"), what="job and what it started gone"
    )

    second = runners.start("runner-b", PURAS_RUNNER_MAX_ATTEMPTS="3")
    done = await watch.terminal(timeout=60)
    assert isinstance(done.event, JobSucceeded), done.event
    assert done.event.result == {"attempt": "2"}
    assert done.event.attempt == 2
    restarted = watch.of("job.started")[-1]
    assert (restarted.attempt, restarted.runner_id) == (2, "runner-b")

    second.send_signal(signal.SIGTERM)
    assert await _wait_exit(second) == 0
    assert "runner stopped" in runners.log("runner-b")
    assert not processes_with(str(runners.tmp / "runner-b"))


async def test_a_job_past_its_attempts_fails_runner_lost(
    harness: Harness, runners: RunnerProcesses
) -> None:
    first = runners.start("runner-a", PURAS_RUNNER_MAX_ATTEMPTS="1")
    dep = await harness.deploy(skill_files("flaky", BLOCK_ON_FIRST_ATTEMPT))
    watch = await harness.submit(dep, "flaky")
    await watch.until(lambda r: r.type == "job.log", timeout=60)
    first.send_signal(signal.SIGKILL)
    await _wait_exit(first)

    runners.start("runner-b", PURAS_RUNNER_MAX_ATTEMPTS="1")
    done = await watch.terminal(timeout=60)
    assert isinstance(done.event, JobFailed), done.event
    assert done.event.error == "runner lost"
    assert done.event.attempt == 1
    assert len(watch.of("job.started")) == 1  # the extra delivery ran nothing


async def test_sigterm_gives_an_unfinished_job_back(
    harness: Harness, runners: RunnerProcesses
) -> None:
    first = runners.start("runner-a", PURAS_RUNNER_SHUTDOWN_GRACE_S="0.5")
    dep = await harness.deploy(skill_files("flaky", BLOCK_ON_FIRST_ATTEMPT))
    watch = await harness.submit(dep, "flaky")
    await watch.until(lambda r: r.type == "job.log", timeout=60)
    first.send_signal(signal.SIGTERM)
    assert await _wait_exit(first) == 0
    assert not processes_with(str(runners.tmp / "runner-a"))
    # Given back (nak), not left to ack_wait: the next runner takes it as attempt 2.
    runners.start("runner-b")
    done = await watch.terminal(timeout=60)
    assert isinstance(done.event, JobSucceeded), done.event
    assert done.event.result == {"attempt": "2"}


async def test_no_nats_means_a_non_zero_exit(runners: RunnerProcesses) -> None:
    proc = runners.start(
        "runner-x",
        PURAS_NATS_URL=f"nats://127.0.0.1:{free_port()}",
        PURAS_RUNNER_CONNECT_TIMEOUT_S="1",
    )
    assert await _wait_exit(proc) == 1
    assert "cannot connect to NATS" in runners.log("runner-x")


async def test_bad_configuration_exits_non_zero(runners: RunnerProcesses) -> None:
    proc = runners.start("runner-y", PURAS_RUNNER_SLOTS="0")
    assert await _wait_exit(proc) == 2
    assert "configuration error" in runners.log("runner-y")
