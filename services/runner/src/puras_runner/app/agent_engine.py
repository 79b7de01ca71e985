"""The agentic engine: a skill whose entrypoint is markdown runs as a model ↔ tools loop
(A1-A10), durable step by step (Z4).

:class:`~puras_runner.domain.agent.loop.AgentLoop` decides; this module does what it
decides and records it. Every model response (with its usage) and every tool result is
stored in the job's log before the next step starts, so a runner that dies mid-run
costs at most the step in flight: the next attempt reads the job's events, feeds the
recorded responses and results back through the loop, and goes on from there — no
model call whose response is recorded is made (or paid for) again, and only a tool
call without a recorded result runs again.

Cancel (J6) is seen between steps: an in-flight tool call or model call completes
(its response is recorded, since it was paid for), then the run stops. The job's
wall-clock limit ends the run wherever it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from puras_common.clock import Clock, SystemClock
from puras_common.events.base import Event
from puras_common.events.ids import (
    job_agent_started_id,
    job_model_response_id,
    job_tool_call_id,
    job_tool_result_id,
    job_usage_id,
)
from puras_common.events.types import (
    AgentStarted,
    ContentBlock,
    FileBlock,
    ModelResponded,
    ModelUsage,
    SkillRecord,
    TextBlock,
    ToolCalled,
    ToolResulted,
    ToolUseBlock,
    UsageRecorded,
)
from puras_common.logging import get_logger
from puras_common.model_catalog import DEFAULT_MODEL
from puras_common.pricing import PricingError, Registry, load_registry
from puras_runner.app.agent_files import ResolvedAttachments, reread, resolve_attachments
from puras_runner.app.agent_tools import MediaCall, Toolbox, ToolboxConfig, ToolOutput
from puras_runner.app.attempt import Attempt
from puras_runner.app.media import MediaCalls
from puras_runner.app.ports import (
    Balances,
    Deployment,
    Fetcher,
    LiveFeed,
    ModelClients,
    Sandboxes,
    SandboxSession,
    Search,
    SecretsProvider,
    SpendBook,
)
from puras_runner.app.spend_guard import CapReached, SpendGuard
from puras_runner.domain.agent.conversation import (
    AssistantBlock,
    ModelReply,
    ModelRequest,
    ModelRoute,
    ResultBlock,
    Text,
    ToolResult,
    ToolUse,
    UserBlock,
    storable_reply,
)
from puras_runner.domain.agent.costs import estimate_input_tokens
from puras_runner.domain.agent.errors import ProviderError, SandboxFailed
from puras_runner.domain.agent.files import AttachmentError
from puras_runner.domain.agent.loop import SET_OUTPUT, AgentLoop, AgentSpec, CallModel, Finish
from puras_runner.domain.agent.routes import ModelRoutes
from puras_runner.domain.agent.tools import offered_tools
from puras_runner.domain.drive_changes import ToolWindow
from puras_runner.domain.jobs import timeout_for
from puras_runner.domain.outcome import Failed, Outcome
from puras_runner.domain.secrets import SecretsUnavailable

__all__ = ["AgentConfig", "AgenticEngine"]

log = get_logger(__name__)

SYSTEM_PROMPT_MAX_BYTES: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class AgentConfig:
    default_model: str = DEFAULT_MODEL
    """The model of a skill that names none (A9), recorded on ``agent_start``."""
    max_steps: int = 50
    """Model calls a run may make unless its skill says otherwise (``max_steps``)."""
    default_timeout_s: float = 900.0
    """Wall-clock limit of a run unless its skill says otherwise (``timeout_seconds``)."""
    tools: ToolboxConfig = field(default_factory=ToolboxConfig)
    margin_pct: int = 20
    """The margin billing charges at (``PURAS_MARGIN_PCT``), for the cost cap's sums."""
    spend_hold_s: float = 900.0
    """How long a call's hold on its key's spend limit lasts if it is never settled (its
    runner died mid-call): the most a lost call keeps the key's budget."""


class _Sandbox:
    """The run's sandbox process, started on the first tool that needs it (a run that
    only talks and searches never starts one)."""

    def __init__(self, open_: Any) -> None:
        self._open = open_
        self._session: SandboxSession | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> SandboxSession:
        async with self._lock:
            if self._session is None:
                self._session = await self._open()
            return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


class AgenticEngine:
    """An agentic skill's run: the :class:`~puras_runner.app.engines.Engine` of kind
    ``agentic``."""

    def __init__(
        self,
        *,
        models: ModelClients,
        routes: ModelRoutes,
        sandboxes: Sandboxes,
        fetcher: Fetcher,
        search: Search,
        live: LiveFeed,
        secrets: SecretsProvider,
        config: AgentConfig,
        pricing: Registry | None = None,
        spend: SpendBook | None = None,
        balances: Balances | None = None,
        clock: Clock | None = None,
        media: MediaCalls | None = None,
    ) -> None:
        self.spend = spend
        """Per-key spend limits (Z1); ``None``: jobs with one fail before their first call."""
        self.balances = balances
        """Project balances, for projects that stop agent jobs at zero."""
        self.clock = clock or SystemClock()
        self.guard = SpendGuard(spend, self.clock, config.spend_hold_s)
        """The cost cap and key spend limit before each call (shared with media calls)."""
        self.media = media
        """The ``media`` tool's calls (``None``: media generation is not configured)."""
        self.pricing = pricing if pricing is not None else load_registry()
        """Prices the run's calls for its cost cap (billing prices them for good)."""
        self.models = models
        self.routes = routes
        self.sandboxes = sandboxes
        self.fetcher = fetcher
        self.search = search
        self.live = live
        self.secrets = secrets
        self.config = config
        self._prompts: dict[tuple[str, str], str] = {}

    async def close(self) -> None:
        await self.models.aclose()

    async def run(self, attempt: Attempt, deployment: Deployment, skill: SkillRecord) -> Outcome:
        job = attempt.job
        timeout_s = timeout_for(job, skill.timeout_seconds, self.config.default_timeout_s)
        slug = skill.model or self.config.default_model
        try:
            route = self.routes.get(slug)
        except KeyError as exc:
            return Failed(str(exc.args[0]))
        try:
            system = await self._system_prompt(deployment, skill)
        except (OSError, UnicodeDecodeError) as exc:
            return Failed(f"could not read the skill's prompt {skill.entrypoint}: {exc}")
        try:
            secrets = await self.secrets.secrets_for(job.project_id)
        except SecretsUnavailable as exc:
            return Failed(str(exc))
        env = {**secrets, **attempt.job_env}
        if env:
            attempt.mask(env.values())
        sandbox = _Sandbox(
            lambda: self.sandboxes.open(
                deployment,
                skill,
                job,
                attempt=attempt.number,
                timeout_s=timeout_s,
                secrets=env,
                on_output=attempt.on_output,
            )
        )
        attempt.after(sandbox.close)
        tools = offered_tools(skill)
        spec = AgentSpec(
            route=route,
            system=system,
            tools=tools,
            output_schema=skill.output_schema,
            max_steps=skill.max_steps or self.config.max_steps,
        )
        toolbox = Toolbox(
            skill=skill,
            route=route,
            tools=tools,
            sandbox=sandbox.get,
            fetcher=self.fetcher,
            search=self.search,
            secrets=secrets.values(),
            config=self.config.tools,
            media=_media_of(self.media, attempt),
        )
        run = _Run(self, attempt, spec, toolbox, sandbox)
        try:
            async with asyncio.timeout(timeout_s):
                return await run.go()
        except TimeoutError:
            return Failed(
                f"agent run timed out after {timeout_s:g} s (the job's wall-clock limit; "
                "set timeout_seconds in skill.yaml, up to 3600)"
            )
        except (SandboxFailed, _RunFailed) as exc:
            return Failed(str(exc))

    async def _system_prompt(self, deployment: Deployment, skill: SkillRecord) -> str:
        key = (deployment.id, skill.name)
        prompt = self._prompts.get(key)
        if prompt is None:
            path = deployment.root / "skills" / skill.name / skill.entrypoint
            prompt = await asyncio.to_thread(_read_prompt, path)
            self._prompts[key] = prompt
        return prompt


def _media_of(media: MediaCalls | None, attempt: Attempt) -> MediaCall | None:
    if media is None:
        return None

    async def call(request: dict[str, Any]) -> dict[str, Any]:
        return await media.generate(attempt, request, tool="media")

    return call


def _read_prompt(path: Path) -> str:
    with path.open("rb") as f:
        data = f.read(SYSTEM_PROMPT_MAX_BYTES + 1)
    if len(data) > SYSTEM_PROMPT_MAX_BYTES:
        raise OSError(f"it is larger than {SYSTEM_PROMPT_MAX_BYTES // 1024} KB")
    return data.decode("utf-8")


class _Run:
    """One attempt of one agent run."""

    def __init__(
        self,
        engine: AgenticEngine,
        attempt: Attempt,
        spec: AgentSpec,
        toolbox: Toolbox,
        sandbox: _Sandbox,
    ) -> None:
        self.engine = engine
        self.attempt = attempt
        self.job = attempt.job
        self.spec = spec
        self.route: ModelRoute = spec.route
        self.toolbox = toolbox
        self.sandbox = sandbox
        self.attachments = ResolvedAttachments()
        self._recorded_calls: set[tuple[int, str]] = set()
        self._behind: asyncio.Future[None] | None = None
        """Records still landing, in order, while the step's tool runs (see _call_tool)."""

    async def go(self) -> Outcome:
        attempt, job = self.attempt, self.job
        history = await attempt.events.history(job) if attempt.number > 1 else []
        try:
            self.attachments = await resolve_attachments(
                job.inputs.get("attachments"),
                route=self.route,
                fetcher=self.engine.fetcher,
                sandbox=self.sandbox.get,
            )
        except AttachmentError as exc:
            return Failed(str(exc))  # A7: before any model call
        loop = AgentLoop(self.spec, first_message(job.inputs, self.attachments.blocks))
        attempt.begin()
        if not any(isinstance(e, AgentStarted) for e in history):
            # Lands while the first model call is made (the call's response is recorded
            # after it): the run's start is not on the path to its first request.
            self._record_behind(
                (
                    AgentStarted(
                        model=self.route.slug,
                        provider=self.route.provider,
                        upstream_model=self.route.upstream_model,
                        tools=[t.name for t in self.spec.tools],
                        max_steps=self.spec.max_steps,
                        attempt=attempt.number,
                    ),
                    job_agent_started_id(job.job_id),
                )
            )
        await self._replay(loop, history)
        try:
            while True:
                action = loop.next()
                if isinstance(action, Finish):
                    await self._landed()
                    return action.outcome
                attempt.raise_if_stopped()  # cancel: between steps (J6)
                if isinstance(action, CallModel):
                    # The last step's results are stored (``_call_tool`` waits for them).
                    await self._call_model(loop, action)
                else:
                    await self._call_tool(loop, action.step, action.call)
        finally:
            if self._behind is not None:
                # Whatever ends the run, what it already sent lands before its end.
                with contextlib.suppress(Exception):
                    await self._behind

    # -- recording -------------------------------------------------------------------------

    def _record_behind(self, *records: tuple[Event, str]) -> None:
        """Record these after what is already on its way, without waiting: a step's
        response, usage and tool call land while its tool runs (a dead runner loses
        nothing by it: a tool call with no recorded result runs again anyway)."""
        previous = self._behind

        async def chain() -> None:
            if previous is not None:
                await previous
            for event, event_id in records:
                await self.attempt.record(event, event_id)

        self._behind = asyncio.ensure_future(chain())

    async def _landed(self) -> None:
        """Wait until everything sent so far is stored (raises what storing raised)."""
        if self._behind is not None:
            behind, self._behind = self._behind, None
            await behind

    # -- steps -----------------------------------------------------------------------------

    async def _call_model(self, loop: AgentLoop, action: CallModel) -> None:
        step, job = action.step, self.job
        live = self.engine.live

        def on_text(piece: str) -> None:
            if piece:
                live.publish(job, {"type": "model_delta", "step": step, "text": piece})

        await self._check_balance()
        worst = self._worst_case(action.request)
        try:
            self.engine.guard.check_cap(self.attempt, worst)
        except CapReached as exc:
            raise _RunFailed(str(exc)) from None
        usage_id = job_usage_id(job.job_id, step)
        held = await self._hold(usage_id, worst)
        client = self.engine.models.client(self.route)
        try:
            reply = storable_reply(await client.respond(action.request, on_text))
        except BaseException as exc:
            if held:
                # Not billed (B5): the key's budget gets the hold back.
                await self._release(usage_id)
            if isinstance(exc, ProviderError):
                raise _RunFailed(str(exc)) from None
            raise
        self.attempt.spent += self._price(reply.usage)
        response = ModelResponded(
            step=step,
            content=[_record_block(b) for b in reply.content],
            stop_reason=reply.stop_reason,
            usage=reply.usage,
            attempt=self.attempt.number,
        )
        usage = self._usage(step, reply.usage)
        if self.attempt.stopped:
            # Made and paid for: recorded even though the job has moved on.
            with contextlib.suppress(Exception):
                await self._landed()
            with contextlib.suppress(Exception):
                await self.attempt.record_late(response, job_model_response_id(job.job_id, step))
                await self.attempt.record_late(usage, job_usage_id(job.job_id, step))
            self.attempt.raise_if_stopped()
        self._record_behind(
            (response, job_model_response_id(job.job_id, step)),
            (usage, job_usage_id(job.job_id, step)),
        )
        loop.model_replied(reply)

    async def _call_tool(self, loop: AgentLoop, step: int, call: ToolUse) -> None:
        job = self.job
        if (step, call.id) not in self._recorded_calls:
            self._record_behind(
                (
                    ToolCalled(step=step, call_id=call.id, name=call.name, input=call.input),
                    job_tool_call_id(job.job_id, step, call.id),
                )
            )
        if call.name == SET_OUTPUT:
            result = loop.set_output(call)
            output = ToolOutput(result, [TextBlock(text=_text_of(result))])
        else:
            started = time.time_ns()
            try:
                output = await self.toolbox.run(call)
            finally:
                self.attempt.tool_windows.append(ToolWindow(call.name, started, time.time_ns()))
        # The step's response and the call are stored, then its result, before the next
        # step starts; a stop that came during the call (an in-flight tool completes,
        # J6) is seen by the loop's next turn.
        await self._landed()
        await self.attempt.record(
            ToolResulted(
                step=step,
                call_id=call.id,
                name=call.name,
                content=output.record,
                is_error=output.result.is_error,
            ),
            job_tool_result_id(job.job_id, step, call.id),
        )
        loop.tool_done(output.result)

    # -- resuming from the log -------------------------------------------------------------

    async def _replay(self, loop: AgentLoop, history: Sequence[Event]) -> None:
        """Feed the recorded steps of earlier attempts through the loop (Z4)."""
        seen_steps: set[int] = set()
        usage_steps: set[int] = set()
        seen_results: set[tuple[int, str]] = set()
        calls: dict[tuple[int, str], ToolUse] = {}
        for event in history:
            match event:
                case ModelResponded() if event.step not in seen_steps:
                    if event.step != loop.step + 1 or loop.finished:
                        break  # not the step the loop is at: keep what fits
                    seen_steps.add(event.step)
                    reply = _reply_of(event)
                    for call in reply.tool_uses:
                        calls[(event.step, call.id)] = call
                    loop.model_replied(reply)
                case UsageRecorded():
                    if event.step not in usage_steps:
                        self.attempt.spent += self._price(event.usage)
                    usage_steps.add(event.step)
                case ToolCalled():
                    self._recorded_calls.add((event.step, event.call_id))
                case ToolResulted() if (event.step, event.call_id) not in seen_results:
                    asked = calls.get((event.step, event.call_id))
                    action = loop.next()
                    if asked is None or getattr(action, "call", None) != asked:
                        continue
                    seen_results.add((event.step, event.call_id))
                    if asked.name == SET_OUTPUT:
                        result = loop.set_output(asked)
                    else:
                        result = ToolResult(
                            asked.id, await self._blocks_of(event.content), event.is_error
                        )
                    loop.tool_done(result)
                case _:
                    pass
        if seen_steps:
            log.info("agent run resumed from the log", steps=len(seen_steps))
        # A response recorded without its usage (the runner died between the two): the
        # call was made and is billed from the usage the response carries.
        for event in history:
            if isinstance(event, ModelResponded) and event.step in seen_steps - usage_steps:
                usage_steps.add(event.step)
                self.attempt.spent += self._price(event.usage)
                await self.attempt.record(
                    self._usage(event.step, event.usage), job_usage_id(self.job.job_id, event.step)
                )

    def _worst_case(self, request: ModelRequest) -> int:
        """The most the call can cost: its input as estimated plus ``max_tokens`` out."""
        if self.job.max_cost_micros is None and self.job.spend_limit is None:
            return 0
        return self._price(
            ModelUsage(
                input_tokens=estimate_input_tokens(request),
                output_tokens=self.route.max_output_tokens,
            )
        )

    async def _hold(self, usage_id: str, worst: int) -> bool:
        """Reserve the call's worst case on its key's spend limit (Z1), if it has one."""
        try:
            return await self.engine.guard.hold(self.attempt, usage_id, worst)
        except CapReached as exc:
            raise _RunFailed(str(exc)) from None

    async def _release(self, usage_id: str) -> None:
        await self.engine.guard.release(self.attempt, usage_id)

    async def _check_balance(self) -> None:
        """A project that asked for it stops its agent jobs once its balance is at or
        below zero (between steps; by default they finish, B3)."""
        if not self.job.stop_agents_at_zero or self.engine.balances is None:
            return
        balance = await self.engine.balances.balance(self.job.project_id)
        if balance is not None and balance <= 0:
            raise _RunFailed(
                f"credit exhausted: the project's balance is {balance} micros, and the "
                "project stops running agent jobs at zero (top up to run jobs again)"
            )

    def _price(self, usage: ModelUsage) -> int:
        try:
            return self.engine.pricing.model_cost(
                self.route.slug, usage, margin_pct=self.engine.config.margin_pct
            )
        except PricingError as exc:
            raise _RunFailed(f"cannot price model {self.route.slug}: {exc}") from None

    def _usage(self, step: int, usage: ModelUsage) -> UsageRecorded:
        return UsageRecorded(
            step=step,
            provider=self.route.provider,
            model=self.route.slug,
            upstream_model=self.route.upstream_model,
            usage=usage,
            skill=self.job.skill,
            key_prefix=self.job.key_prefix,
        )

    async def _blocks_of(self, record: Sequence[ContentBlock]) -> tuple[ResultBlock, ...]:
        """A recorded tool result's blocks again; images and PDFs it showed are read
        again from the drive (a file changed since says so instead)."""
        if not any(isinstance(b, FileBlock) for b in record):
            return tuple(Text(b.text) for b in record if isinstance(b, TextBlock))
        return await reread(record, sandbox=await self.sandbox.get())


class _RunFailed(Exception):
    """A step failed the run (a provider error after its retries)."""


def first_message(
    inputs: Mapping[str, Any], attachments: Sequence[UserBlock]
) -> tuple[UserBlock, ...]:
    """A1: ``inputs.prompt``, then the other inputs as JSON, then the attachments."""
    blocks: list[UserBlock] = []
    prompt = inputs.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        blocks.append(Text(prompt))
    rest = {k: v for k, v in inputs.items() if k not in ("prompt", "attachments")}
    if prompt is not None and not isinstance(prompt, str):
        rest["prompt"] = prompt
    if rest:
        blocks.append(Text("Inputs (JSON):\n" + json.dumps(rest, ensure_ascii=False, indent=1)))
    blocks.extend(attachments)
    if not blocks:
        blocks.append(Text("(no inputs)"))
    return tuple(blocks)


def _record_block(block: AssistantBlock) -> ContentBlock:
    if isinstance(block, Text):
        return TextBlock(text=block.text)
    return ToolUseBlock(id=block.id, name=block.name, input=block.input)


def _reply_of(event: ModelResponded) -> ModelReply:
    content: list[AssistantBlock] = []
    for block in event.content:
        if isinstance(block, TextBlock):
            content.append(Text(block.text))
        elif isinstance(block, ToolUseBlock):
            content.append(ToolUse(block.id, block.name, block.input))
    return ModelReply(tuple(content), event.stop_reason, event.usage)


def _text_of(result: ToolResult) -> str:
    return "".join(b.text for b in result.content if isinstance(b, Text))
