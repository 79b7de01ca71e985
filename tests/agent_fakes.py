"""In-memory stand-ins for the agent engine's ports: a scripted model, the run's sandbox
(its drive a dict), the SSRF-safe fetcher, search, the live feed. For unit tests of the
loop's I/O and of what the model is shown, without NATS, a provider or a jail (the real
adapters have their own suites).

:class:`FakeSandbox` reads a dict as the sandbox reads the drive: a missing file or one
over ``max_bytes`` is a :class:`DriveFile` with an ``error``, in the words of the real
session's tool host; :class:`FakeFetcher` records every URL it is asked for, so a test
can say a URL was *not* fetched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner_fakes import T0, Clock, FakeLog, FakeMsg

from puras_common.events.commands import RunJob
from puras_common.events.types import ModelUsage, SkillRecord, ToolRecord
from puras_runner.app.agent_engine import AgentConfig, AgenticEngine
from puras_runner.app.handler import HandlerConfig, JobHandler
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
from puras_runner.domain.agent.routes import ModelRoutes, parse_routes

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
GIF = b"GIF89a" + bytes(32)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32)
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n" + bytes(16)
ZIP = b"PK\x03\x04" + bytes(40)

CLAUDE = ModelRoute(
    slug="claude/sonnet-4-6", provider="anthropic", upstream_model="claude-sonnet-4-6", pdf=True
)
GPT_4O = ModelRoute(slug="gpt/4o", provider="openai", upstream_model="gpt-4o", pdf=False)
TEXT_ONLY = ModelRoute(
    slug="local/llama3", provider="openai", upstream_model="llama3", vision=False, pdf=False
)


@dataclass
class FakeSandbox:
    """The run's sandbox session: the drive is a dict (path → bytes), bash answers from
    ``commands`` (or says what it ran), user tools from ``tool_results``."""

    drive: dict[str, bytes] = field(default_factory=dict)
    commands: dict[str, BashResult] = field(default_factory=dict)
    tool_results: dict[str, ToolCallResult] = field(default_factory=dict)
    reads: list[list[str]] = field(default_factory=list)
    """The paths of every ``read_files`` call, in order."""
    ran: list[str] = field(default_factory=list)
    """Every bash command, in order."""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    opened: int = 0
    """How often :meth:`open` handed this session out (the lazy opener)."""
    closed: bool = False
    dead: bool = False
    """The sandbox process is gone: bash raises ``SandboxFailed``."""
    bash_gate: asyncio.Event | None = None
    """When set, a bash call waits for it (a call in flight)."""
    in_bash: asyncio.Event = field(default_factory=asyncio.Event)

    async def open(self) -> FakeSandbox:
        self.opened += 1
        return self

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
        self.reads.append(list(paths))
        out = []
        for path in paths:
            data = self.drive.get(path)
            # The tool host's own words (``puras_runner.tool_host``).
            if data is None:
                out.append(DriveFile(path=path, error=f"no such file in the drive: {path}"))
            elif len(data) > max_bytes:
                error = f"{path} is {len(data)} bytes, over the {max_bytes}-byte limit"
                out.append(DriveFile(path=path, error=error))
            else:
                out.append(DriveFile(path=path, data=data, size=len(data)))
        return out

    async def write_file(self, path: str, data: bytes) -> str:
        self.drive[path] = data
        return path

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeFetcher:
    """Answers URLs from a dict (url → :class:`Fetched` or the ``FetchFailed`` to raise)."""

    answers: dict[str, Fetched | FetchFailed] = field(default_factory=dict)
    calls: list[tuple[str, int, float]] = field(default_factory=list)
    """``(url, max_bytes, timeout_s)`` of every ``get``."""

    async def get(self, url: str, *, max_bytes: int, timeout_s: float) -> Fetched:
        self.calls.append((url, max_bytes, timeout_s))
        answer = self.answers.get(url)
        if answer is None:
            raise FetchFailed(f"HTTP 404 from {url}")
        if isinstance(answer, FetchFailed):
            raise answer
        if len(answer.data) > max_bytes:
            raise FetchFailed(f"the response is over {max_bytes} bytes")
        return answer


async def no_sandbox() -> FakeSandbox:
    """The opener of a run that must not need its sandbox."""
    raise AssertionError("the sandbox was opened, but no attachment is in the drive")


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


class FakeSandboxes:
    def __init__(self, session: FakeSandbox | None = None) -> None:
        self.session = session or FakeSandbox()
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
    ) -> FakeSandbox:
        self.opened += 1
        self.secrets = secrets
        return self.session


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


# -- a runner with the agent engine over fakes (the engine's unit tests) -----------------


ANSWER = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


class OneSkillDeployments:
    def __init__(self, root: Path, skill: SkillRecord) -> None:
        (root / "skills" / skill.name).mkdir(parents=True)
        (root / "skills" / skill.name / "SKILL.md").write_text("You answer briefly.")
        self.deployment = Deployment(id="dep-1", root=root, skills={skill.name: skill})

    def cached(self, deployment_id: str) -> Deployment | None:
        return self.deployment

    async def get(self, job: RunJob) -> Deployment:
        return self.deployment


class FixedSecrets:
    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = values or {}

    async def secrets_for(self, project_id: str) -> dict[str, str]:
        return self.values


def _routes() -> ModelRoutes:
    return parse_routes(
        {}, {"*": {"provider": "anthropic", "upstream_model": "claude-test", "pdf": True}}
    )


def agent_job(**inputs: Any) -> RunJob:
    return RunJob(
        job_id="job-1",
        project_id="proj-1",
        skill="agent",
        inputs=inputs or {"prompt": "what is 6 x 7?"},
        deployment_id="dep-1",
        created_at=T0,
        bundle_key="k",
        bundle_sha256="00" * 32,
    )


class AgentRig:
    def __init__(
        self,
        tmp_path: Path,
        model: ScriptedModel,
        *,
        skill: SkillRecord | None = None,
        session: FakeSandbox | None = None,
        secrets: dict[str, str] | None = None,
        max_steps: int = 10,
        timeout_s: float = 30,
    ) -> None:
        self.skill = skill or SkillRecord(
            name="agent", kind="agentic", entrypoint="SKILL.md", output_schema=ANSWER
        )
        self.log = FakeLog()
        self.model = model
        self.sandboxes = FakeSandboxes(session)
        self.live = FakeLive()
        self.engine = AgenticEngine(
            models=model,
            routes=_routes(),
            sandboxes=self.sandboxes,
            fetcher=FakeFetcher(),
            search=NoSearch(),
            live=self.live,
            secrets=FixedSecrets(secrets),
            config=AgentConfig(max_steps=max_steps, default_timeout_s=timeout_s),
        )
        self.handler = JobHandler(
            events=self.log,
            deployments=OneSkillDeployments(tmp_path / "dep", self.skill),
            engines={"agentic": self.engine},
            clock=Clock(),
            config=HandlerConfig(
                runner_id="runner-a", max_attempts=3, heartbeat_s=10, max_log_bytes=1000
            ),
        )

    async def run(self, job: RunJob | None = None, attempt: int = 1) -> FakeMsg:
        msg = FakeMsg(job or agent_job(), attempt)
        await self.handler.handle(msg)
        await self.handler.drain()
        return msg

    def agent_types(self) -> list[str]:
        return [t for t in self.log.types() if t != "job.log"]
