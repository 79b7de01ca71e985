"""An agent run's sandbox process, for real: a ``TemplateSandboxes`` over the runner's
engine (its venv, its template, the jail when the tests run as root) and the tool host
inside it, driven through the ``SandboxSession`` port the agent's tools use."""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from runner_helpers import eventually, processes_with
from tool_host_helpers import AgentSandbox, agent_sandbox

from puras_runner import tool_host
from puras_runner.domain.agent.errors import SandboxFailed

pytestmark = pytest.mark.integration

MODES = ["off"] + (["namespaces"] if os.geteuid() == 0 else [])

TOOLS = {
    "add": """
        def run(inputs):
            print("adding", inputs["a"], inputs["b"])
            return {"sum": inputs["a"] + inputs["b"]}
    """,
    "boom": """
        def helper(v):
            raise ValueError(f"bad value {v!r}")

        def run(inputs):
            return helper(inputs["v"])
    """,
    "broken": """
        import no_such_module_here

        def run(inputs):
            return {}
    """,
    "slow": """
        import time

        def run(inputs):
            time.sleep(100)
            return {}
    """,
    "listy": """
        def run(inputs):
            return [1, 2]
    """,
}


@pytest.fixture(params=MODES)
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AgentSandbox]:
    async with agent_sandbox(tmp_path, sandbox=request.param, tools=TOOLS) as sandbox:
        yield sandbox


async def test_bash_returns_output_and_exit_code(env: AgentSandbox) -> None:
    session = await env.open()
    done = await session.bash("echo hello; echo oops >&2; exit 3", 10)
    assert (done.exit_code, done.output, done.timed_out) == (3, "hello\noops\n", False)


async def test_bash_sees_the_job_environment(env: AgentSandbox) -> None:
    session = await env.open(secrets={"SHOP_TOKEN": "t0k"})
    done = await session.bash(
        'echo "$SHOP_TOKEN|$PURAS_DEPLOYMENT_ROOT|$PYTHONPATH|$PWD"; command -v python', 10
    )
    token, root, pythonpath, cwd = done.output.splitlines()[0].split("|")
    assert token == "t0k"
    assert pythonpath == f"{root}:{cwd}"
    # The venv's interpreter comes first on PATH.
    assert done.output.splitlines()[1].endswith("/bin/python")
    assert "/venv" in done.output.splitlines()[1] or "venvs" in done.output.splitlines()[1]


async def test_files_written_by_one_call_are_there_for_the_next(env: AgentSandbox) -> None:
    session = await env.open()
    assert (await session.bash("mkdir -p work && echo 42 > work/n.txt", 10)).exit_code == 0
    done = await session.bash("cat work/n.txt", 10)
    assert (done.exit_code, done.output) == (0, "42\n")


async def test_bash_keeps_the_last_8_kb(env: AgentSandbox) -> None:
    session = await env.open()
    done = await session.bash("printf START; head -c 20000 /dev/zero | tr '\\0' a; printf END", 10)
    assert done.exit_code == 0
    assert len(done.output) == 8192
    assert done.output.endswith("aaaEND")
    assert "START" not in done.output


async def test_bash_timeout_kills_the_whole_group(env: AgentSandbox) -> None:
    session = await env.open()
    marker = f"1000.{secrets.randbelow(10**6):06d}"
    done = await session.bash(f"sleep {marker} & echo started; wait", 1)
    assert done.timed_out
    assert done.exit_code == -9
    assert done.output == "started\n"
    await eventually(lambda: not processes_with(f"sleep {marker}"), what="sleep killed")
    # The session goes on.
    assert (await session.bash("echo next", 10)).output == "next\n"


async def test_a_user_tool_returns_its_value(env: AgentSandbox) -> None:
    session = await env.open()
    done = await session.call_tool(env.tool("add"), {"a": 2, "b": 3}, 10)
    assert (done.value, done.error) == ({"sum": 5}, None)
    # Its prints are the job's output (the runner's log events).
    assert (b"adding 2 3\n") in b"".join(data for stream, data in env.output if stream == "stdout")
    again = await session.call_tool(env.tool("add"), {"a": 1, "b": 1}, 10)
    assert again.value == {"sum": 2}


async def test_a_user_tool_that_raises_is_that_calls_error(env: AgentSandbox) -> None:
    session = await env.open()
    done = await session.call_tool(env.tool("boom"), {"v": 7}, 10)
    assert done.value is None
    assert done.error is not None
    assert done.error.startswith("ValueError: bad value 7")
    assert "in helper" in done.error


async def test_a_user_tool_that_returns_a_list_is_an_error(env: AgentSandbox) -> None:
    session = await env.open()
    done = await session.call_tool(env.tool("listy"), {}, 10)
    assert done.error == "run() must return a dict (a JSON object), it returned list"


async def test_a_user_tool_is_killed_at_its_timeout(env: AgentSandbox) -> None:
    session = await env.open()
    done = await session.call_tool(env.tool("slow"), {}, 1)
    assert done.error == "tool slow timed out after 1s"
    assert (await session.call_tool(env.tool("add"), {"a": 1, "b": 1}, 10)).value == {"sum": 2}


async def test_an_import_error_is_the_calls_error_not_the_runs(env: AgentSandbox) -> None:
    session = await env.open()
    done = await session.call_tool(env.tool("broken"), {}, 10)
    assert done.error is not None
    assert "could not import tools/broken.py" in done.error
    assert "ModuleNotFoundError" in done.error
    assert "no_such_module_here" in done.error
    assert (await session.bash("echo still here", 10)).output == "still here\n"
    assert (await session.call_tool(env.tool("add"), {"a": 1, "b": 2}, 10)).value == {"sum": 3}


async def test_read_files(env: AgentSandbox) -> None:
    drive = env.drive()
    (drive / "docs").mkdir(parents=True)
    (drive / "docs" / "a.txt").write_bytes(b"hello drive")
    (drive / "big.bin").write_bytes(b"x" * 5000)
    session = await env.open()
    got = await session.read_files(
        ["drive/docs/a.txt", "missing.txt", "big.bin", "../x", "/etc/passwd", "docs"], 1000
    )
    a, missing, big, up, absolute, folder = got
    assert (a.path, a.data, a.size, a.error) == ("docs/a.txt", b"hello drive", 11, None)
    assert missing.data is None
    assert missing.error == "no such file in the drive: missing.txt"
    assert big.data is None
    assert big.error == "big.bin is 5000 bytes, over the 1000-byte limit"
    assert up.data is None
    assert up.error is not None
    assert "'..' segment" in up.error
    assert absolute.data is None
    assert absolute.error is not None
    assert "starts with /" in absolute.error
    assert folder.data is None
    assert folder.error == "docs is not a regular file"


async def test_read_refuses_a_symlink_out_of_the_drive(env: AgentSandbox) -> None:
    session = await env.open()
    await session.bash("ln -s /etc/hostname drive/escape; ln -s ../.. drive/up", 10)
    escape, up = await session.read_files(["escape", "up/etc/hostname"], 1000)
    assert escape.error is not None
    assert "outside the drive" in escape.error
    assert up.error is not None
    assert "outside the drive" in up.error


async def test_write_file_then_read_it_back(env: AgentSandbox) -> None:
    session = await env.open()
    data = os.urandom(3 * 1024 * 1024)
    assert await session.write_file("drive/out/deep/img.bin", data) == "out/deep/img.bin"
    (back,) = await session.read_files(["out/deep/img.bin"], len(data))
    assert back.data == data
    assert (env.drive() / "out" / "deep" / "img.bin").read_bytes() == data
    # Only the file itself: no temporary left beside it.
    assert os.listdir(env.drive() / "out" / "deep") == ["img.bin"]
    assert (await session.bash("wc -c < drive/out/deep/img.bin", 10)).output.strip() == str(
        len(data)
    )


async def test_write_file_refuses_bad_paths(env: AgentSandbox) -> None:
    session = await env.open()
    for path, why in (
        ("../x", "'..' segment"),
        ("/abs", "starts with /"),
        ("a\\b", "backslash"),
        ("dir/", "names a folder"),
        ("a\x00b", "NUL character"),
        ("", "non-empty"),
    ):
        with pytest.raises(ValueError, match=why):
            await session.write_file(path, b"x")
    assert await session.write_file("ok.txt", b"x") == "ok.txt"


async def test_the_runs_time_limit_ends_the_sandbox(env: AgentSandbox) -> None:
    session = await env.open(timeout_s=2)
    with pytest.raises(SandboxFailed, match="time limit"):
        await session.bash("sleep 30", 60)
    with pytest.raises(SandboxFailed):
        await session.bash("echo after", 10)


async def test_after_close_nothing_runs(env: AgentSandbox) -> None:
    session = await env.open()
    assert (await session.bash("echo up", 10)).output == "up\n"
    await session.close()
    with pytest.raises(SandboxFailed, match="closed"):
        await session.bash("echo again", 10)


def test_the_host_answers_an_unknown_op_and_ends_on_a_malformed_frame(tmp_path: Path) -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    host = tool_host.Host(theirs, str(tmp_path), str(tmp_path))
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            host.serve()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        tool_host.send_frame(ours, {"op": "format_disk"})
        assert tool_host.recv_frame(ours) == ({"error": "unknown op 'format_disk'"}, b"")
        ours.sendall(tool_host.HEADER.pack(3, 0) + b"{x}")
        thread.join(10)
        assert not thread.is_alive()
        assert len(errors) == 1
        assert isinstance(errors[0], tool_host.ProtocolError)
    finally:
        ours.close()
        theirs.close()
        thread.join(10)
