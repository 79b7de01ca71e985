"""An agent run's process in the job sandbox, as the runner sees it (``Sandboxes``).

The agentic skill gets a warm template like a deterministic one (its venv, its jail),
whose "function" is the runtime's ``tool_host``; one run is one job child of it, living
for the whole run, confined exactly as a deterministic job is. :class:`ToolHostSession`
speaks the tool host's protocol (see :mod:`puras_runner.tool_host`) over a stream
socket handed to the child with its job: one request at a time, each with a deadline,
so a wedged host never hangs the run; the job's wall-clock limit is
:class:`~puras_runner.adapters.engine.Execution`'s, as for any job.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from puras_common.events.commands import RunJob
from puras_common.events.types import SkillRecord, ToolRecord
from puras_common.logging import get_logger
from puras_runner import jail
from puras_runner.adapters.engine import (
    EXIT_GRACE_S,
    OUTPUT_GRACE_S,
    Channel,
    Execution,
    TemplateEngine,
)
from puras_runner.app.ports import BashResult, Deployment, DriveFile, OutputSink, ToolCallResult
from puras_runner.domain.agent.errors import SandboxFailed
from puras_runner.domain.errors import PreparationFailed
from puras_runner.domain.outcome import Raised, RunFacts

__all__ = ["TemplateSandboxes", "ToolHostSession"]

log = get_logger(__name__)

HEADER: Final = struct.Struct("!II")
"""A frame's header: JSON length, data length (``tool_host``'s framing)."""
MAX_REPLY_HEADER: Final = 64 << 20
MAX_REPLY_DATA: Final = 1 << 30
SLACK_S: Final = 10.0
"""Beyond an operation's own timeout, how long the host may take to answer."""
FILE_OP_S: Final = 60.0
"""The deadline of a drive read or write."""
CLOSE_GRACE_S: Final = 2.0
"""How long a closed session's host gets to end by itself before it is killed."""
ENDED_GRACE_S: Final = EXIT_GRACE_S + OUTPUT_GRACE_S
"""After its channel broke, how long to wait for the host's end to be known (to say
how it ended)."""


class TemplateSandboxes:
    """:class:`~puras_runner.app.ports.Sandboxes` over the deterministic engine's
    templates, jails and cgroups."""

    def __init__(self, engine: TemplateEngine, *, max_tool_result_bytes: int | None = None) -> None:
        self._engine = engine
        self._max_tool_result = max_tool_result_bytes or engine.max_result_bytes

    async def open(
        self,
        deployment: Deployment,
        skill: SkillRecord,
        job: RunJob,
        *,
        attempt: int,
        timeout_s: float,
        secrets: Mapping[str, str],
        on_output: OutputSink,
    ) -> ToolHostSession:
        if skill.kind != "agentic":
            raise SandboxFailed(f"skill {skill.name!r} is not agentic")
        engine = self._engine
        try:
            prepared = await engine.prepare(deployment, skill, job)
        except PreparationFailed as exc:
            raise SandboxFailed(str(exc)) from None
        if prepared.template.jail is not None:
            skill_dir, bundle, cwd = (
                f"{jail.BUNDLE}/skills/{skill.name}",
                jail.BUNDLE,
                jail.JOB_HOME,
            )
        else:
            skill_dir, bundle = str(prepared.template.skill_dir), str(deployment.root)
            cwd = str(engine.workdirs.path(job.job_id, attempt))
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            execution = await engine.start(
                prepared,
                job,
                attempt=attempt,
                timeout_s=timeout_s,
                secrets=secrets,
                on_output=on_output,
                channel=Channel(
                    fd=theirs.fileno(),
                    inputs={"skill_dir": skill_dir, "drive": "drive"},
                    # The agent's Python finds the bundle's packages and what it wrote
                    # in the workdir (A3).
                    env={"PYTHONPATH": f"{bundle}:{cwd}"},
                ),
            )
        except PreparationFailed as exc:
            ours.close()
            raise SandboxFailed(str(exc)) from None
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        try:
            reader, writer = await asyncio.open_unix_connection(sock=ours)
        except BaseException:
            ours.close()
            execution.kill()
            await execution.close()
            raise
        return ToolHostSession(
            execution, reader, writer, timeout_s=timeout_s, max_tool_result=self._max_tool_result
        )


class ToolHostSession:
    """:class:`~puras_runner.app.ports.SandboxSession` over a running tool host."""

    def __init__(
        self,
        execution: Execution,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        timeout_s: float,
        max_tool_result: int,
    ) -> None:
        self._execution = execution
        self._reader = reader
        self._writer = writer
        self._timeout_s = timeout_s
        self._max_tool_result = max_tool_result
        self._lock = asyncio.Lock()
        self._broken: str | None = None
        """Why no request can be made any more (``None``: the host is usable)."""
        self._closed = False
        # The job's wall-clock limit: wait() kills the host at it. Its end, however it
        # comes, fails every pending and later request.
        self._ended: asyncio.Task[RunFacts] = asyncio.create_task(execution.wait(timeout_s))

    # -- the operations -------------------------------------------------------------------

    async def bash(self, command: str, timeout_s: float) -> BashResult:
        reply, _ = await self._request(
            {"op": "bash", "command": command, "timeout_s": timeout_s}, b"", timeout_s + SLACK_S
        )
        if "error" in reply:
            return BashResult(exit_code=127, output=f"could not run bash: {reply['error']}")
        return BashResult(
            exit_code=int(reply["exit_code"]),
            output=str(reply["output"]),
            timed_out=bool(reply.get("timed_out")),
        )

    async def call_tool(
        self, tool: ToolRecord, inputs: dict[str, Any], timeout_s: float
    ) -> ToolCallResult:
        module_file, _, function = tool.entrypoint.partition(":")
        reply, _ = await self._request(
            {
                "op": "tool",
                "name": tool.name,
                "module_file": module_file,
                "function": function or "run",
                "inputs": inputs,
                "timeout_s": timeout_s,
                "max_result_bytes": self._max_tool_result,
            },
            b"",
            timeout_s + SLACK_S,
        )
        if "error" in reply:
            return ToolCallResult(error=str(reply["error"]))
        return ToolCallResult(value=reply.get("value"))

    async def read_files(self, paths: Sequence[str], max_bytes: int) -> list[DriveFile]:
        reply, data = await self._request(
            {"op": "read", "paths": list(paths), "max_bytes": max_bytes}, b"", FILE_OP_S
        )
        if "error" in reply:
            return [DriveFile(path=p, error=str(reply["error"])) for p in paths]
        out: list[DriveFile] = []
        offset = 0
        for entry in reply["files"]:
            if entry.get("error") is not None:
                out.append(DriveFile(path=str(entry["path"]), error=str(entry["error"])))
                continue
            length = int(entry["length"])
            out.append(
                DriveFile(
                    path=str(entry["path"]),
                    data=data[offset : offset + length],
                    size=int(entry["size"]),
                )
            )
            offset += length
        return out

    async def write_file(self, path: str, data: bytes) -> str:
        """Raises ``ValueError`` for a path the drive refuses (or a failed write)."""
        reply, _ = await self._request({"op": "write", "path": path}, data, FILE_OP_S)
        if "error" in reply:
            raise ValueError(str(reply["error"]))
        return str(reply["path"])

    # -- the channel ----------------------------------------------------------------------

    async def _request(
        self, msg: dict[str, Any], data: bytes, deadline_s: float
    ) -> tuple[dict[str, Any], bytes]:
        async with self._lock:
            self._check()
            exchange = asyncio.ensure_future(self._exchange(msg, data))
            try:
                done, _ = await asyncio.wait(
                    {exchange, self._ended},
                    timeout=deadline_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            except BaseException:
                # Cancelled midway: the stream is out of step with the host for good.
                exchange.cancel()
                self._break("a request was abandoned midway")
                raise
            if exchange in done:
                try:
                    return exchange.result()
                except (OSError, EOFError, asyncio.IncompleteReadError, ValueError):
                    # The host went away mid-answer (or answered garbage): say how it ended.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._ended), ENDED_GRACE_S)
                    if not self._ended.done():
                        self._break("its channel broke")
                    self._check()
                    raise SandboxFailed("the run's sandbox process ended") from None
            exchange.cancel()
            with contextlib.suppress(BaseException):
                await exchange
            if self._ended.done():
                self._check()
            self._break(f"it did not answer a {msg['op']} request within {deadline_s:g}s")
            self._check()
            raise AssertionError("unreachable")

    async def _exchange(self, msg: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        raw = json.dumps(msg, ensure_ascii=False).encode()
        self._writer.write(HEADER.pack(len(raw), len(data)) + raw)
        if data:
            self._writer.write(data)
        await self._writer.drain()
        json_len, data_len = HEADER.unpack(await self._reader.readexactly(HEADER.size))
        if json_len > MAX_REPLY_HEADER or data_len > MAX_REPLY_DATA:
            raise ValueError("reply frame too large")
        reply = json.loads(await self._reader.readexactly(json_len))
        body = await self._reader.readexactly(data_len) if data_len else b""
        if not isinstance(reply, dict):
            raise ValueError("reply is not a JSON object")
        return reply, body

    def _break(self, why: str) -> None:
        if self._broken is None:
            self._broken = why
        self._execution.kill()

    def _check(self) -> None:
        if self._closed:
            raise SandboxFailed("the run's sandbox is closed")
        if self._ended.done():
            raise SandboxFailed(f"the run's sandbox process ended: {self._how()}")
        if self._broken is not None:
            raise SandboxFailed(f"the run's sandbox process ended: {self._broken}")

    def _how(self) -> str:
        if self._broken is not None:
            return self._broken
        if self._ended.cancelled() or self._ended.exception() is not None:
            return "its process could not be watched"
        facts = self._ended.result()
        if facts.timed_out:
            return f"it was stopped at the run's time limit ({self._timeout_s:g}s)"
        if facts.oom_killed:
            return "it ran out of memory"
        if facts.pids_exhausted:
            return "it hit the process limit"
        if isinstance(facts.report, Raised):
            return f"{facts.report.type_name}: {facts.report.message}"
        if facts.exit is not None and facts.exit.signal is not None:
            return f"killed by signal {facts.exit.signal}"
        if facts.exit is not None:
            return f"exit code {facts.exit.code}"
        return "its template went away"

    # -- the end ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the channel (the host then ends), kill it if it does not, tear down."""
        if self._closed:
            return
        self._closed = True
        try:
            with contextlib.suppress(Exception):
                self._writer.close()
            try:
                await asyncio.wait_for(asyncio.shield(self._ended), CLOSE_GRACE_S)
            except TimeoutError:
                self._execution.kill()
            with contextlib.suppress(Exception):
                await self._ended
        finally:
            await self._execution.close()
