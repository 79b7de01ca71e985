"""Attacks from an agent's bash on the platform and on other tenants: the agent's
commands run in the run's sandbox process, confined exactly as a deterministic job, so
they see nothing of the runner, nothing of other projects, reach no service on the
host, run as nobody the host knows, and leave nothing running after the run."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from runner_helpers import eventually, processes_with
from tool_host_helpers import AgentSandbox, agent_sandbox

from puras_runner import jail

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the job sandbox needs a root runner"),
]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[AgentSandbox]:
    async with agent_sandbox(tmp_path) as sandbox:
        yield sandbox


async def test_bash_cannot_read_the_runners_environment(
    env: AgentSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"runner-secret-{secrets.token_hex(8)}"
    monkeypatch.setenv("PURAS_TEST_RUNNER_SECRET", secret)
    session = await env.open()
    done = await session.bash(
        "env; cat /proc/1/environ; for f in /proc/[0-9]*/environ; do cat $f; done; "
        f"cat /proc/{os.getpid()}/environ; ls /proc",
        10,
    )
    assert secret not in done.output
    assert "PURAS_TEST_RUNNER_SECRET" not in done.output
    # The runner's pid means nothing in the sandbox: its own pid namespace.
    pids = await session.bash(
        f"test -e /proc/{os.getpid()}/environ && echo seen || echo unseen", 10
    )
    assert pids.output == "unseen\n"


async def test_bash_cannot_see_another_projects_drive(env: AgentSandbox) -> None:
    other = env.drive("other-project")
    other.mkdir(parents=True)
    marker = f"other-{secrets.token_hex(8)}"
    (other / f"{marker}.txt").write_text("theirs")
    (env.drive() / "mine.txt").parent.mkdir(parents=True, exist_ok=True)
    (env.drive() / "mine.txt").write_text("mine")
    session = await env.open()
    listing = await session.bash("ls -a drive/ drive/..", 10)
    assert "mine.txt" in listing.output
    assert "other-project" not in listing.output
    found = await session.bash(f"find / -name '{marker}*' 2>/dev/null", 60)
    assert found.output == ""
    cat = await session.bash(
        f"cat {other}/{marker}.txt drive/../other-project/{marker}.txt 2>/dev/null", 10
    )
    assert cat.exit_code != 0
    assert "theirs" not in cat.output
    (read,) = await session.read_files([f"../other-project/{marker}.txt"], 1000)
    assert read.data is None
    assert read.error is not None


async def test_bash_cannot_reach_a_service_on_the_hosts_loopback(env: AgentSandbox) -> None:
    connected = asyncio.Event()

    def on_connect(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        connected.set()
        w.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        session = await env.open()
        done = await session.bash(
            f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo connected || echo refused",
            30,
        )
        assert done.output == "refused\n"
        assert not connected.is_set()
    finally:
        server.close()
        await server.wait_closed()


async def test_bash_runs_as_an_unprivileged_uid(env: AgentSandbox) -> None:
    session = await env.open()
    done = await session.bash(
        "id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
        "echo x > drive/owned.txt",
        10,
    )
    lines = done.output.splitlines()
    assert lines[0] == str(jail.JOB_UID)
    status = dict(line.split(":\t") for line in lines[1:])
    assert int(status["CapEff"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"
    # On the host the file belongs to the project's own uid, never root's.
    owner = (env.drive() / "owned.txt").stat().st_uid
    assert owner != 0
    assert owner != os.getuid()


async def test_nothing_survives_the_session(env: AgentSandbox) -> None:
    session = await env.open()
    marker = f"2000.{secrets.randbelow(10**6):06d}"
    # A new session escapes the command's own process group kill; the run's end must
    # still take it.
    done = await session.bash(
        f"setsid sleep {marker} >/dev/null 2>&1 </dev/null & p=$!; "
        # Until it has left the command's session (then the command may end).
        'until [ "$(ps -o sid= -p $p | tr -d " ")" = "$p" ]; do :; done; echo ok',
        10,
    )
    assert done.output == "ok\n"
    await eventually(lambda: bool(processes_with(f"sleep {marker}")), what="sleep started")
    assert (await session.bash("echo next", 10)).output == "next\n"
    assert processes_with(f"sleep {marker}")  # it outlived its command, within the run
    await session.close()
    await eventually(lambda: not processes_with(f"sleep {marker}"), what="sleep gone")
