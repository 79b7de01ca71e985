"""In-memory stand-ins for the agent engine's ports: a scripted model, a sandbox, the
web, the live feed. For unit tests of the loop's I/O without NATS, a provider or a jail
(the real adapters have their own suites)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from puras_common.events.commands import RunJob
from puras_common.events.types import ModelUsage, SkillRecord, ToolRecord
from puras_runner.app.ports import (
    BashResult,
    Deployment,
    DriveFile,
    Fetched,
    OutputSink,
    ToolCallResult,
)
from puras_runner.domain.agent.conversation import (
    ModelReply,
    ModelRequest,
    ModelRoute,
    OnText,
    Text,
    ToolUse,
)
from puras_runner.domain.agent.errors import FetchFailed, SandboxFailed, SearchUnavailable

Reply = ModelReply | Exception | Callable[[ModelRequest], ModelReply]


def text(t: str, *, tokens: tuple[int, int] = (10, 5)) -> ModelReply:
    return ModelReply(
        (Text(t),), "end_turn", ModelUsage(input_tokens=tokens[0], output_tokens=tokens[1])
    )


def tool(
    name: str, args: dict[str, Any], *, call_id: str | None = None, say: str = ""
) -> ModelReply:
    blocks: list[Text | ToolUse] = [Text(say)] if say else []
    blocks.append(ToolUse(call_id or f"call-{name}", name, args))
    return ModelReply(tuple(blocks), "tool_use", ModelUsage(input_tokens=20, output_tokens=8))


class ScriptedModel:
    """``ModelClients`` and ``ModelClient`` in one: answers each call with the next
    scripted reply (an exception is raised), streaming its text in two pieces."""

    def __init__(self, *replies: Reply) -> None:
        self.replies: list[Reply] = list(replies)
        self.requests: list[ModelRequest] = []
        self.gate: asyncio.Event | None = None
        """When set, a call waits for it (a call in flight) before answering."""
        self.in_call = asyncio.Event()
        self.closed = False

    def client(self, route: ModelRoute) -> ScriptedModel:
        return self

    async def aclose(self) -> None:
        self.closed = True

    async def respond(self, request: ModelRequest, on_text: OnText) -> ModelReply:
        self.requests.append(request)
        self.in_call.set()
        if self.gate is not None:
            await self.gate.wait()
        if not self.replies:
            raise AssertionError("the model was called more often than scripted")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        if callable(reply):
            reply = reply(request)
        for block in reply.content:
            if isinstance(block, Text) and block.text:
                half = len(block.text) // 2 or 1
                on_text(block.text[:half])
                on_text(block.text[half:])
        return reply


@dataclass
class FakeSession:
    """A ``SandboxSession``: bash answers from ``commands`` (or a default), the drive is
    a dict."""

    commands: dict[str, BashResult] = field(default_factory=dict)
    drive: dict[str, bytes] = field(default_factory=dict)
    tool_results: dict[str, ToolCallResult] = field(default_factory=dict)
    ran: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    closed: bool = False
    dead: bool = False
    bash_gate: asyncio.Event | None = None
    in_bash: asyncio.Event = field(default_factory=asyncio.Event)

    async def bash(self, command: str, timeout_s: float) -> BashResult:
        if self.dead:
            raise SandboxFailed("the run's sandbox process ended: killed by signal 9")
        self.ran.append(command)
        self.in_bash.set()
        if self.bash_gate is not None:
            await self.bash_gate.wait()
        return self.commands.get(command, BashResult(0, f"ran: {command}\n"))

    async def call_tool(
        self, tool: ToolRecord, inputs: dict[str, Any], timeout_s: float
    ) -> ToolCallResult:
        self.tool_calls.append((tool.name, inputs))
        return self.tool_results.get(tool.name, ToolCallResult(value={"ok": True}))

    async def read_files(self, paths: Sequence[str], max_bytes: int) -> list[DriveFile]:
        out = []
        for p in paths:
            data = self.drive.get(p)
            out.append(
                DriveFile(p, data=data, size=len(data))
                if data is not None
                else DriveFile(p, error=f"{p}: no such file in the drive")
            )
        return out

    async def write_file(self, path: str, data: bytes) -> str:
        self.drive[path] = data
        return path

    async def close(self) -> None:
        self.closed = True


class FakeSandboxes:
    def __init__(self, session: FakeSession | None = None) -> None:
        self.session = session or FakeSession()
        self.opened = 0
        self.secrets: Mapping[str, str] = {}

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
    ) -> FakeSession:
        self.opened += 1
        self.secrets = secrets
        return self.session


class FakeFetcher:
    def __init__(self, pages: dict[str, Fetched] | None = None) -> None:
        self.pages = pages or {}
        self.fetched: list[str] = []

    async def get(self, url: str, *, max_bytes: int, timeout_s: float) -> Fetched:
        self.fetched.append(url)
        page = self.pages.get(url)
        if page is None:
            raise FetchFailed(f"refused: {url} is not reachable from here")
        return page


class NoSearch:
    async def web(self, query: str, max_results: int) -> list[dict[str, Any]]:
        raise SearchUnavailable("web search is not configured on this Puras server")

    async def images(self, query: str, max_results: int) -> list[dict[str, Any]]:
        raise SearchUnavailable("web search is not configured on this Puras server")


class FakeLive:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def publish(self, job: RunJob, frame: dict[str, Any]) -> None:
        self.frames.append(frame)


async def until(predicate: Callable[[], bool]) -> None:
    """Until ``predicate()`` holds (the code under test runs concurrently)."""
    async with asyncio.timeout(5):
        while not predicate():
            await asyncio.sleep(0)
