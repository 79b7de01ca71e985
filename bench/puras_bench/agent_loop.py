"""What the agent loop itself costs per step, with a model that answers at once.

An in-process :class:`~puras_runner.app.agent_engine.AgenticEngine` under the runner's
:class:`~puras_runner.app.handler.JobHandler`, exactly as ``bootstrap`` wires them, runs
agent jobs whose model is :class:`InstantModel`: no HTTP, each call answered at once
with the next step of a fixed script — ``steps - 1`` tool calls, then ``set_output``. So
the time between two model calls is the loop's own work for one step: the model
response and its usage recorded in the job's log, the tool call recorded, the tool run,
its result recorded, the loop's next decision.

Two tools:

* ``media``: answers "media generation is not configured" at once, in the runner — the
  loop's and the log's cost alone;
* ``bash`` ``true``: through the real job sandbox (``TemplateSandboxes`` over the
  runner's ``TemplateEngine``, namespaces and cgroups as ``bootstrap`` builds them): the
  command goes to the run's tool host, which starts ``/bin/sh -c true`` as a child
  process and reports its exit code. The first bash step of a run also starts the
  run's sandbox process; it is reported apart from the steady steps.

Two job logs: an in-memory one (the loop's overhead with nothing behind the log) and
the runner's NATS adapter (``NatsJobEvents``) over a real nats-server with JetStream
(every append a publish acknowledged by the stream, as in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from puras_bench.stats import latency_summary, pct
from puras_common.bus import ConcurrencyConflict
from puras_common.events.base import Event
from puras_common.events.commands import RunJob
from puras_common.events.types import (
    JobStarted,
    JobSucceeded,
    ModelUsage,
    SkillRecord,
    TextBlock,
    ToolResulted,
)
from puras_common.ids import new_id
from puras_runner import bootstrap
from puras_runner.adapters.secrets import NoSecrets
from puras_runner.app.handler import HandlerConfig, JobHandler
from puras_runner.app.ports import Deployment, JobEventLog, LastEvent
from puras_runner.domain.agent.conversation import (
    ModelReply,
    ModelRequest,
    ModelRoute,
    OnText,
    Text,
    ToolUse,
)
from puras_runner.settings import RunnerSettings

__all__ = ["InstantModel", "MemoryLog", "latency_with_p95", "measure_agent_loop"]

SKILL = "agent"
ANSWER = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
TOOLS: Mapping[str, Mapping[str, Any]] = {
    "media": {"model": "openai/gpt-image-2", "inputs": {"prompt": "a red bicycle"}},
    "bash": {"command": "true"},
}
EXPECTED: Mapping[str, str] = {
    "media": "media generation is not configured",
    "bash": "exit code: 0\n",
}
"""How each tool's result starts: the bench checks it measured the tool, not an error."""


def latency_with_p95(seconds: Sequence[float]) -> dict[str, Any]:
    """:func:`latency_summary` with the p95 as well."""
    out = latency_summary(seconds)
    out["p95_ms"] = round(pct(sorted(s * 1000.0 for s in seconds), 95), 3)
    return out


class InstantModel:
    """``ModelClients`` and ``ModelClient`` at once: step ``k`` of a run (counted from
    the assistant messages the request carries, so it needs no state per run) calls
    ``tool`` until ``steps``, where it calls ``set_output``. Each call's arrival time is
    kept (``perf_counter``) by job."""

    def __init__(self, tool: str, steps: int) -> None:
        self.tool = tool
        self.args = dict(TOOLS[tool])
        self.steps = steps
        self.arrivals: list[float] = []

    def client(self, route: ModelRoute) -> InstantModel:
        return self

    async def aclose(self) -> None:
        """Nothing to close: no connection behind it."""

    async def respond(self, request: ModelRequest, on_text: OnText) -> ModelReply:
        self.arrivals.append(time.perf_counter())
        step = 1 + sum(1 for m in request.messages if m.role == "assistant")
        usage = ModelUsage(input_tokens=100, output_tokens=10)
        if step < self.steps:
            call = ToolUse(f"call-{step}", self.tool, self.args)
            return ModelReply((call,), "tool_use", usage)
        done = ToolUse(f"call-{step}", "set_output", {"answer": "done"})
        return ModelReply((Text("Done."), done), "tool_use", usage)


class MemoryLog:
    """The runner's ``JobEventLog`` in memory: per-job sequences, msg-id dedupe and the
    expected-sequence check, no I/O (what the loop costs with nothing behind it)."""

    def __init__(self) -> None:
        self._events: dict[str, list[tuple[str, Event]]] = {}
        self._watchers: dict[str, list[Callable[[str, Event | None], None]]] = {}

    async def append(
        self, event: Event, *, job: RunJob, event_id: str, expected_seq: int | None
    ) -> int:
        stored = self._events.setdefault(job.job_id, [])
        for i, (eid, _) in enumerate(stored):
            if eid == event_id:
                return i + 1
        if expected_seq is not None and expected_seq != len(stored):
            raise ConcurrencyConflict(f"expected {expected_seq}, last is {len(stored)}")
        stored.append((event_id, event))
        for w in self._watchers.get(job.job_id, []):
            w(type(event).type, event if isinstance(event, JobStarted) else None)
        return len(stored)

    async def last(self, job: RunJob) -> LastEvent | None:
        stored = self._events.get(job.job_id)
        return LastEvent(len(stored), type(stored[-1][1]).type) if stored else None

    async def latest_started(self, job: RunJob) -> JobStarted | None:
        started = [e for _, e in self._events.get(job.job_id, []) if isinstance(e, JobStarted)]
        return started[-1] if started else None

    async def history(self, job: RunJob) -> list[Event]:
        return [e for _, e in self._events.get(job.job_id, [])]

    async def watch(self, job: RunJob, on_event: Callable[[str, Event | None], None]) -> Any:
        watchers = self._watchers.setdefault(job.job_id, [])
        watchers.append(on_event)

        class _Watch:
            async def close(self) -> None:
                watchers.remove(on_event)

        return _Watch()

    def types(self, job_id: str) -> list[str]:
        return [type(e).type for _, e in self._events.get(job_id, [])]


class _Msg:
    """A work item delivered once."""

    def __init__(self, job: RunJob) -> None:
        self.data = msgspec.json.encode(job)
        self.headers: Mapping[str, str] | None = None
        self.attempt = 1
        self.acked = False

    async def ack(self) -> None:
        self.acked = True

    async def nak(self, delay: float | None = None) -> None:
        raise RuntimeError("the bench job was redelivered")

    async def term(self) -> None:
        raise RuntimeError("the bench job was terminated")

    async def in_progress(self) -> None:
        pass


class _Deployments:
    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def cached(self, deployment_id: str) -> Deployment | None:
        return self.deployment

    async def get(self, job: RunJob) -> Deployment:
        return self.deployment


class _NoLive:
    def publish(self, job: RunJob, frame: dict[str, Any]) -> None:
        pass


class _TimedSandboxes:
    """The engine's ``Sandboxes``, each session's ``bash`` calls timed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[float] = []

    async def open(self, *args: Any, **kwargs: Any) -> Any:
        session = await self.inner.open(*args, **kwargs)
        bash = session.bash
        calls = self.calls

        async def timed_bash(command: str, timeout_s: float) -> Any:
            t0 = time.perf_counter()
            try:
                return await bash(command, timeout_s)
            finally:
                calls.append(time.perf_counter() - t0)

        session.bash = timed_bash
        return session


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class _Rig:
    settings: RunnerSettings
    deployment: Deployment
    project_id: str = field(default_factory=new_id)


@contextlib.asynccontextmanager
async def _rig(root: Path, sandbox: str) -> AsyncIterator[tuple[_Rig, Any]]:
    """The runner's template engine as ``bootstrap`` builds it, over a one-skill bundle."""
    settings = RunnerSettings(
        env="dev",
        nats_url="nats://127.0.0.1:1",
        data_dir=root / "runner",
        drive_root=root / "drive",
        sandbox=sandbox,  # type: ignore[arg-type]
        slots=2,
        agent_max_steps=1000,
        log_level="warning",
        log_format="console",
    )
    engine = bootstrap.build_processes(settings)
    for sub in ("bundles", "venvs", "jobs"):
        (settings.data_dir / sub).mkdir(parents=True, exist_ok=True)
    engine.workdirs.reset()
    bundle = root / "bundle"
    (bundle / "skills" / SKILL).mkdir(parents=True)
    (bundle / "skills" / SKILL / "SKILL.md").write_text("You call the tool you are told to.\n")
    skill = SkillRecord(name=SKILL, kind="agentic", entrypoint="SKILL.md", output_schema=ANSWER)
    deployment = Deployment(id=new_id(), root=bundle, skills={SKILL: skill})
    try:
        yield _Rig(settings, deployment), engine
    finally:
        await engine.close()


def _job(rig: _Rig) -> RunJob:
    return RunJob(
        job_id=new_id(),
        project_id=rig.project_id,
        skill=SKILL,
        inputs={"prompt": "Go."},
        deployment_id=rig.deployment.id,
        created_at=datetime.now(UTC),
        bundle_key="unused",
        bundle_sha256="unused",
    )


async def _measure_one(
    rig: _Rig,
    engine: Any,
    log: JobEventLog,
    tool: str,
    *,
    steps: int,
    runs: int,
    warmup: int,
) -> dict[str, Any]:
    model = InstantModel(tool, steps)
    agent = bootstrap.build_agent_engine(
        rig.settings,
        processes=engine,
        secrets=NoSecrets(),
        live=_NoLive(),
        models=model,
        provider_environ={},
    )
    timed = _TimedSandboxes(agent.sandboxes)
    agent.sandboxes = timed
    handler = JobHandler(
        events=log,
        deployments=_Deployments(rig.deployment),
        engines={"agentic": agent},
        clock=_Clock(),
        config=HandlerConfig(
            runner_id="bench", max_attempts=1, heartbeat_s=30, max_log_bytes=64 * 1024
        ),
    )
    steady: list[float] = []
    first_tool: list[float] = []
    to_first_call: list[float] = []
    last_to_end: list[float] = []
    per_run: list[float] = []
    bash_calls: list[float] = []
    for i in range(warmup + runs):
        timed.calls.clear()
        model.arrivals.clear()
        job = _job(rig)
        msg = _Msg(job)
        t0 = time.perf_counter()
        await handler.handle(msg)
        t_end = time.perf_counter()
        await handler.drain()
        ended = await log.last(job)
        if not msg.acked or ended is None or ended.type != JobSucceeded.type:
            history = await log.history(job)
            raise RuntimeError(
                f"bench agent job ended {ended}: {[type(e).type for e in history][-6:]} "
                f"{history[-1] if history else ''}"
            )
        if i == warmup:
            _check_results(await log.history(job), tool)
        a = model.arrivals
        if len(a) != steps:
            raise RuntimeError(f"the model was called {len(a)} times, not {steps}")
        if i < warmup:
            continue
        gaps = [a[k + 1] - a[k] for k in range(len(a) - 1)]
        if gaps:
            first_tool.append(gaps[0])
            steady.extend(gaps[1:])
        bash_calls.extend(timed.calls[1:])  # as the steps: the run's first apart
        to_first_call.append(a[0] - t0)
        last_to_end.append(t_end - a[-1])
        per_run.append(t_end - t0)
    return {
        "tool": tool,
        "steps_per_run": steps,
        "runs": runs,
        "step_ms": latency_with_p95(steady) if steady else None,
        "first_tool_step_ms": latency_with_p95(first_tool) if first_tool else None,
        "submit_to_first_model_call_ms": latency_with_p95(to_first_call),
        "last_model_call_to_succeeded_ms": latency_with_p95(last_to_end),
        "run_ms": latency_with_p95(per_run),
        # The tool's share of each step after the first: the sandbox session's bash call
        # as the loop made it.
        "bash_call_in_loop_ms": latency_with_p95(bash_calls) if bash_calls else None,
    }


def _check_results(history: Sequence[Event], tool: str) -> None:
    for event in history:
        if isinstance(event, ToolResulted) and event.name == tool:
            text = "".join(b.text for b in event.content if isinstance(b, TextBlock))
            if not text.startswith(EXPECTED[tool]):
                raise RuntimeError(f"the bench's {tool} call answered {text[:300]!r}")


async def _measure(
    steps: int,
    runs: int,
    warmup: int,
    nats: bool,
    sandbox: str,
    tools: Sequence[str],
    on_progress: Callable[[str], None],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "steps_per_run": steps,
        "runs": runs,
        "sandbox": sandbox,
        "model": "InstantModel (in process, no HTTP): tool call x (steps-1), then set_output",
        "logs": {},
    }
    with tempfile.TemporaryDirectory(prefix="puras-bench-agent-") as tmp:
        async with _rig(Path(tmp), sandbox) as (rig, engine):
            logs: list[tuple[str, Callable[[], Any]]] = [("memory", MemoryLog)]
            bus = server = None
            if nats:
                from puras_cli.infra.nats_server import NatsServer
                from puras_common.bus import connect, ensure_streams
                from puras_runner.adapters.event_log import NatsJobEvents

                # The dev stack's nats-server settings (JetStream file store, default
                # sync), a server of its own so that no projector reads these jobs.
                server = NatsServer(store_dir=Path(tmp) / "nats", log_file=Path(tmp) / "nats.log")
                server.start()
                bus = await connect(server.url, name="bench-agent-loop", initial_timeout=10)
                await ensure_streams(bus.js)
                nats_bus = bus
                out["nats"] = "nats-server (JetStream file store, default sync), own instance"
                logs.append(("nats", lambda: NatsJobEvents(nats_bus)))
            try:
                for log_name, make in logs:
                    res: dict[str, Any] = {}
                    for tool in tools:
                        on_progress(
                            f"agent loop: {tool}, {log_name} log, {runs} runs x {steps} steps"
                        )
                        r = await _measure_one(
                            rig, engine, make(), tool, steps=steps, runs=runs, warmup=warmup
                        )
                        res[tool] = r
                        s = r["step_ms"]
                        on_progress(
                            f"    per step p50 {s['p50_ms']:.3f} ms  p95 {s['p95_ms']:.3f} ms"
                            f"  (first {tool} step p50 {r['first_tool_step_ms']['p50_ms']:.3f} ms)"
                        )
                        if r["bash_call_in_loop_ms"]:
                            c = r["bash_call_in_loop_ms"]
                            on_progress(
                                f"    of which the bash call p50 {c['p50_ms']:.3f} ms"
                                f"  p95 {c['p95_ms']:.3f} ms"
                            )
                    out["logs"][log_name] = res
                if "bash" in tools:
                    on_progress(f"sandbox alone: {runs * steps} bash calls of `true`, no loop")
                    out["bash_call_alone_ms"] = await _bash_alone(rig, engine, runs * steps)
                    b = out["bash_call_alone_ms"]
                    on_progress(f"    per call p50 {b['p50_ms']:.3f} ms  p95 {b['p95_ms']:.3f} ms")
            finally:
                if bus is not None:
                    await bus.close()
                if server is not None:
                    server.cleanup()
    return out


async def _bash_alone(rig: _Rig, engine: Any, n: int) -> dict[str, Any]:
    """``bash`` ``true`` through a run's sandbox session directly: the tool's share of a
    step (request to the tool host, its child process, the reply), without the loop."""
    from puras_runner.adapters.sandbox_session import TemplateSandboxes

    skill = rig.deployment.skills[SKILL]
    session = await TemplateSandboxes(engine).open(
        rig.deployment,
        skill,
        _job(rig),
        attempt=1,
        timeout_s=600,
        secrets={},
        on_output=lambda _s, _d: None,
    )
    try:
        times = []
        for i in range(n + 10):
            t0 = time.perf_counter()
            result = await session.bash("true", 60)
            if result.exit_code != 0:
                raise RuntimeError(f"bash true exited {result.exit_code}: {result.output}")
            if i >= 10:
                times.append(time.perf_counter() - t0)
    finally:
        await session.close()
    return latency_with_p95(times)


def measure_agent_loop(
    *,
    steps: int = 20,
    runs: int = 10,
    warmup: int = 2,
    nats: bool = True,
    sandbox: str = "namespaces",
    tools: Sequence[str] = ("media", "bash"),
    on_progress: Callable[[str], None] = lambda _m: None,
) -> dict[str, Any]:
    """Per-step times of agent runs with an instant model (see the module doc), over
    the in-memory job log and, with ``nats``, over the NATS one (a nats-server of its
    own)."""
    if not 3 <= steps <= 1000:
        raise ValueError("steps must be 3 to 1000 (two tool steps and set_output at least)")
    coro = _measure(steps, runs, warmup, nats, sandbox, tools, on_progress)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
