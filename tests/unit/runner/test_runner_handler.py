"""The run flow of one work item, against fakes of the event log and the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from runner_fakes import T0, Clock, FakeLog, FakeMsg

from puras_common.events.commands import RunJob
from puras_common.events.types import (
    JobCancelled,
    JobFailed,
    JobLogged,
    JobQueued,
    JobStarted,
    JobSucceeded,
    SkillRecord,
)
from puras_runner.app.attempt import Attempt
from puras_runner.app.engines import DeterministicEngine, ProcessConfig
from puras_runner.app.handler import HandlerConfig, JobHandler
from puras_runner.app.ports import Deployment
from puras_runner.domain.errors import PreparationFailed
from puras_runner.domain.logs import Stream
from puras_runner.domain.outcome import Outcome, Raised, Returned, RunFacts, Succeeded


@dataclass
class FakeRunning:
    facts: RunFacts
    output: list[tuple[Stream, bytes]] = field(default_factory=list)
    block: bool = False
    on_wait: Callable[[], Any] | None = None
    on_output: Callable[[Stream, bytes], None] | None = None
    killed: bool = False
    closed: bool = False
    _kill_event: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, timeout_s: float) -> RunFacts:
        assert self.on_output is not None
        for stream, data in self.output:
            self.on_output(stream, data)
            await asyncio.sleep(0)
        if self.on_wait is not None:
            result = self.on_wait()
            if asyncio.iscoroutine(result):
                await result
        if self.block:
            await self._kill_event.wait()
        return self.facts

    def kill(self) -> None:
        self.killed = True
        self._kill_event.set()

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakePrepared:
    spec: SkillRecord


class FakeDeployments:
    """The shared bundle cache: one deployment, ``dep-1``, with the skills given."""

    def __init__(self, *skills: SkillRecord, fail: str | None = None) -> None:
        self.deployment = Deployment(
            id="dep-1", root=Path("/nonexistent"), skills={s.name: s for s in skills}
        )
        self.fail = fail
        self.loads = 0

    def cached(self, deployment_id: str) -> Deployment | None:
        return self.deployment if self.loads and not self.fail else None

    async def get(self, job: RunJob) -> Deployment:
        self.loads += 1
        if self.fail:
            raise PreparationFailed(self.fail)
        return self.deployment


class FakeEngine:
    """The deterministic engine's processes (a ``ProcessEngine``)."""

    def __init__(
        self,
        running: FakeRunning | None = None,
        *,
        fail: str | None = None,
        output_schema: dict[str, Any] | None = None,
    ) -> None:
        self.running = running
        self.fail = fail
        self.spec = SkillRecord(
            name="echo", kind="deterministic", entrypoint="main.py:run", output_schema=output_schema
        )
        self.prepared = 0
        self.started: list[dict[str, Any]] = []

    def lookup(self, deployment_id: str, skill: str) -> FakePrepared | None:
        # Cached after the first successful preparation, like the real engine.
        return FakePrepared(self.spec) if self.prepared and not self.fail else None

    async def prepare(self, deployment: Deployment, spec: SkillRecord, job: RunJob) -> FakePrepared:
        self.prepared += 1
        if self.fail:
            raise PreparationFailed(self.fail)
        return FakePrepared(spec)

    async def start(
        self,
        prepared: FakePrepared,
        job: RunJob,
        *,
        attempt: int,
        timeout_s: float,
        secrets: Mapping[str, str],
        on_output: Callable[[Stream, bytes], None],
    ) -> FakeRunning:
        assert self.running is not None
        self.started.append({"attempt": attempt, "timeout_s": timeout_s, "secrets": dict(secrets)})
        self.running.on_output = on_output
        return self.running


class Secrets:
    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = values or {}

    async def secrets_for(self, project_id: str) -> Mapping[str, str]:
        return self.values


async def _stored(log: FakeLog, type_: str) -> None:
    """Until the handler's own (concurrent) publish of ``type_`` has landed."""
    while type_ not in log.types():
        await asyncio.sleep(0)


JOB = RunJob(
    job_id="job-1",
    project_id="proj-1",
    skill="echo",
    inputs={"x": 1},
    deployment_id="dep-1",
    created_at=T0,
    bundle_key="proj-1/dep-1.zip",
    bundle_sha256="00" * 32,
    timeout_seconds=9,
)


def _handler(
    log: FakeLog,
    engine: FakeEngine,
    *,
    secrets: dict[str, str] | None = None,
    deployments: FakeDeployments | None = None,
    **config: Any,
) -> JobHandler:
    cfg: dict[str, Any] = {
        "runner_id": "runner-a",
        "max_attempts": 3,
        "heartbeat_s": 10,
        "max_log_bytes": 1000,
        "log_flush_s": 0.01,
    }
    cfg.update(config)
    return JobHandler(
        events=log,
        deployments=deployments or FakeDeployments(engine.spec),
        engines={
            "deterministic": DeterministicEngine(
                engine,
                secrets=Secrets(secrets),
                config=ProcessConfig(
                    default_timeout_s=30, memory_limit_mb=256, max_result_bytes=1000
                ),
            )
        },
        clock=Clock(),
        config=HandlerConfig(**cfg),
    )


async def test_first_attempt_records_start_logs_and_result_then_acks() -> None:
    log = FakeLog()
    running = FakeRunning(
        RunFacts(report=Returned({"y": 2}, 7), exit=None),
        output=[("stdout", b"hello\n"), ("stderr", b"warn\n")],
    )
    engine = FakeEngine(running)
    msg = FakeMsg(JOB)
    handler = _handler(log, engine)
    await handler.handle(msg)
    await handler.drain()
    assert log.types()[0] == "job.started"
    assert log.types()[-1] == "job.succeeded"
    assert next(s.id for s in log.stored) == "job-1:started:1"
    assert [s.id for s in log.stored][-1] == "job-1:terminal"
    logs = log.events(JobLogged)
    assert [(e.stream, e.lines) for e in logs] == [("stdout", ["hello"]), ("stderr", ["warn"])]
    assert [s.id for s in log.stored if isinstance(s.event, JobLogged)] == [
        "job-1:log:1:1",
        "job-1:log:1:2",
    ]
    (done,) = log.events(JobSucceeded)
    assert done.result == {"y": 2}
    assert done.attempt == 1
    assert engine.started == [{"attempt": 1, "timeout_s": 9.0, "secrets": {}}]
    assert msg.acked == 1
    assert running.closed


async def test_many_lines_are_batched_and_capped() -> None:
    log = FakeLog()
    output: list[tuple[Stream, bytes]] = [("stdout", f"line {i}\n".encode()) for i in range(300)]
    running = FakeRunning(RunFacts(report=Returned({}, 2), exit=None), output=output)
    handler = _handler(log, FakeEngine(running), max_log_bytes=500, log_flush_s=0.05)
    await handler.handle(FakeMsg(JOB))
    logs = log.events(JobLogged)
    assert 1 <= len(logs) <= 3, "lines must be batched, not one event per line"
    lines = [line for e in logs for line in e.lines]
    assert lines[0] == "line 0"
    # Every line but the last (cut at the cap) had its newline counted.
    assert sum(len(line) + 1 for line in lines) - 1 <= 500
    assert logs[-1].truncated
    assert not any(e.truncated for e in logs[:-1])


async def test_a_failure_to_prepare_fails_the_job_and_acks() -> None:
    log = FakeLog()
    msg = FakeMsg(JOB)
    await _handler(log, FakeEngine(fail="could not prepare the deployment bundle: x")).handle(msg)
    (failed,) = log.events(JobFailed)
    assert failed.error == "could not prepare the deployment bundle: x"
    assert msg.acked == 1


async def test_a_user_error_is_recorded_and_not_retried() -> None:
    log = FakeLog()
    running = FakeRunning(RunFacts(report=Raised("ValueError", "bad", ""), exit=None))
    msg = FakeMsg(JOB)
    await _handler(log, FakeEngine(running)).handle(msg)
    (failed,) = log.events(JobFailed)
    assert failed.error == "ValueError: bad"
    assert msg.acked == 1
    assert msg.naked == 0


async def test_output_schema_is_checked() -> None:
    log = FakeLog()
    running = FakeRunning(RunFacts(report=Returned({"n": "x"}, 9), exit=None))
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    await _handler(log, FakeEngine(running, output_schema=schema)).handle(FakeMsg(JOB))
    (failed,) = log.events(JobFailed)
    assert failed.error == (
        "output does not match output_schema: result.n: 'x' is not of type 'integer'"
    )


async def test_a_redelivery_of_an_ended_job_is_only_acked() -> None:
    log = FakeLog()
    log.put(
        JobStarted(attempt=1, deployment_id="dep-1", runner_id="r0", started_at=T0),
        "job-1:started:1",
    )
    log.put(JobSucceeded(result={}, attempt=1, finished_at=T0), "job-1:terminal")
    engine = FakeEngine()
    msg = FakeMsg(JOB, attempt=2)
    await _handler(log, engine).handle(msg)
    assert engine.prepared == 0
    assert msg.acked == 1
    assert len(log.stored) == 2


async def test_a_redelivery_of_an_unfinished_job_runs_it_again() -> None:
    log = FakeLog()
    log.put(
        JobStarted(attempt=1, deployment_id="dep-1", runner_id="r0", started_at=T0),
        "job-1:started:1",
    )
    running = FakeRunning(RunFacts(report=Returned({}, 2), exit=None))
    msg = FakeMsg(JOB, attempt=2)
    await _handler(log, FakeEngine(running)).handle(msg)
    assert log.types() == ["job.started", "job.started", "job.succeeded"]
    assert log.events(JobStarted)[-1].attempt == 2
    assert log.events(JobSucceeded)[0].attempt == 2
    assert msg.acked == 1


async def test_the_delivery_after_the_last_attempt_fails_the_job_runner_lost() -> None:
    log = FakeLog()
    started = T0.replace(hour=5)
    log.put(
        JobStarted(attempt=3, deployment_id="dep-1", runner_id="r0", started_at=started),
        "job-1:started:3",
    )
    engine = FakeEngine()
    msg = FakeMsg(JOB, attempt=4)
    await _handler(log, engine).handle(msg)
    (failed,) = log.events(JobFailed)
    assert failed.error == "runner lost"
    assert failed.attempt == 3
    assert failed.started_at == started
    assert log.stored[-1].id == "job-1:terminal"
    assert engine.prepared == 0
    assert msg.acked == 1


async def test_runner_lost_is_not_recorded_over_an_ended_job() -> None:
    log = FakeLog()
    log.put(JobFailed(error="boom", attempt=1, finished_at=T0), "job-1:terminal")
    msg = FakeMsg(JOB, attempt=4)
    await _handler(log, FakeEngine()).handle(msg)
    assert len(log.stored) == 1
    assert msg.acked == 1


async def test_a_newer_attempt_stops_this_one_without_ack() -> None:
    log = FakeLog()

    def newer_attempt_starts() -> None:
        log.put(
            JobStarted(attempt=2, deployment_id="dep-1", runner_id="r-b", started_at=T0),
            "job-1:started:2",
        )

    running = FakeRunning(
        RunFacts(report=Returned({}, 2), exit=None), block=True, on_wait=newer_attempt_starts
    )
    msg = FakeMsg(JOB)
    handler = _handler(log, FakeEngine(running))
    await asyncio.wait_for(handler.handle(msg), 5)
    await handler.drain()
    assert running.killed
    assert running.closed
    assert log.types() == ["job.started", "job.started"]
    assert msg.acked == 0


async def test_a_job_cancelled_elsewhere_is_killed_and_acked() -> None:
    log = FakeLog()

    async def cancel_after_start() -> None:
        await _stored(log, "job.started")
        log.put(JobCancelled(finished_at=T0), "job-1:terminal")

    running = FakeRunning(
        RunFacts(report=Returned({}, 2), exit=None), block=True, on_wait=cancel_after_start
    )
    msg = FakeMsg(JOB)
    await asyncio.wait_for(_handler(log, FakeEngine(running)).handle(msg), 5)
    assert running.killed
    assert log.types() == ["job.started", "job.cancelled"]
    assert msg.acked == 1


async def test_a_conflicting_terminal_publish_is_not_acked() -> None:
    log = FakeLog()

    async def another_writer() -> None:
        # Invisible to the watch (a log line), visible to the expected-sequence check.
        await _stored(log, "job.started")
        log.put(JobLogged(stream="stdout", lines=["x"]), "job-1:log:9:1")

    running = FakeRunning(RunFacts(report=Returned({}, 2), exit=None), on_wait=another_writer)
    msg = FakeMsg(JOB)
    await _handler(log, FakeEngine(running)).handle(msg)
    assert "job.succeeded" not in log.types()
    assert msg.acked == 0


async def test_an_undecodable_work_item_is_terminated() -> None:
    msg = FakeMsg(b'{"not": "a job"}')
    await _handler(FakeLog(), FakeEngine()).handle(msg)
    assert msg.termed == 1
    assert msg.acked == 0


async def test_heartbeats_while_the_job_runs() -> None:
    log = FakeLog()
    running = FakeRunning(RunFacts(report=Returned({}, 2), exit=None), block=True)
    msg = FakeMsg(JOB)
    task = asyncio.create_task(_handler(log, FakeEngine(running), heartbeat_s=0.01).handle(msg))
    while msg.progress < 3:
        await asyncio.sleep(0.01)
    running.kill()
    await asyncio.wait_for(task, 5)
    assert msg.acked == 1


async def test_secrets_reach_the_engine_and_are_masked_in_logs_and_errors() -> None:
    log = FakeLog()
    running = FakeRunning(
        RunFacts(report=Raised("ValueError", "bad token hunter22", ""), exit=None),
        output=[("stdout", b"token=hunter22\n")],
    )
    engine = FakeEngine(running)
    await _handler(log, engine, secrets={"TOKEN": "hunter22"}).handle(FakeMsg(JOB))
    assert engine.started[0]["secrets"] == {"TOKEN": "hunter22"}
    assert log.events(JobLogged)[0].lines == ["token=***"]
    assert log.events(JobFailed)[0].error == "ValueError: bad token ***"


@pytest.mark.parametrize("attempt", [1, 2])
async def test_shutdown_cancellation_gives_the_job_back(attempt: int) -> None:
    log = FakeLog()
    running = FakeRunning(RunFacts(report=Returned({}, 2), exit=None), block=True)
    msg = FakeMsg(JOB, attempt=attempt)
    task = asyncio.create_task(_handler(log, FakeEngine(running)).handle(msg))
    while running.on_output is None:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert running.killed
    assert msg.naked == 1
    assert msg.acked == 0


async def test_a_skill_of_a_kind_without_an_engine_fails_with_a_clear_reason() -> None:
    log = FakeLog()
    engine = FakeEngine()
    agentic = SkillRecord(name="echo", kind="agentic", entrypoint="SKILL.md")
    msg = FakeMsg(JOB)
    await _handler(log, engine, deployments=FakeDeployments(agentic)).handle(msg)
    (failed,) = log.events(JobFailed)
    assert failed.error == (
        "skill 'echo' is agentic (entrypoint SKILL.md): this runner has no engine for agentic "
        "skills; it runs deterministic"
    )
    assert engine.prepared == 0
    assert msg.acked == 1


async def test_a_skill_missing_from_the_pinned_deployment_fails_the_job() -> None:
    log = FakeLog()
    other = SkillRecord(name="other", kind="deterministic", entrypoint="main.py:run")
    engine = FakeEngine()
    await _handler(log, engine, deployments=FakeDeployments(other)).handle(FakeMsg(JOB))
    (failed,) = log.events(JobFailed)
    assert failed.error == "skill 'echo' is not in deployment dep-1; its skills: other"
    assert engine.prepared == 0


async def test_an_unusable_deployment_fails_the_job_before_any_engine() -> None:
    log = FakeLog()
    engine = FakeEngine()
    deployments = FakeDeployments(engine.spec, fail="could not prepare the deployment bundle: x")
    await _handler(log, engine, deployments=deployments).handle(FakeMsg(JOB))
    (failed,) = log.events(JobFailed)
    assert failed.error == "could not prepare the deployment bundle: x"
    assert engine.prepared == 0


async def test_the_deployment_is_loaded_once_then_found_in_the_cache() -> None:
    log = FakeLog()
    engine = FakeEngine(FakeRunning(RunFacts(report=Returned({}, 2), exit=None)))
    deployments = FakeDeployments(engine.spec)
    handler = _handler(log, engine, deployments=deployments)
    await handler.handle(FakeMsg(JOB))
    await handler.handle(FakeMsg(msgspec.structs.replace(JOB, job_id="job-2")))
    assert deployments.loads == 1
    assert engine.prepared == 1
    assert log.types().count("job.succeeded") == 2


class StepsEngine:
    """An engine that is not one process: steps (model calls, tool runs) that each write
    output, then an outcome, all recorded through the same attempt."""

    def __init__(self, steps: list[bytes], *, block: bool = False) -> None:
        self.steps = steps
        self.block = block
        self.stopped = asyncio.Event()

    async def run(self, attempt: Attempt, deployment: Deployment, skill: SkillRecord) -> Outcome:
        attempt.begin()
        attempt.on_stop(self.stopped.set)
        for step in self.steps:
            attempt.on_output("stdout", step)
            await asyncio.sleep(0.02)  # the next model call, a tool process...
            attempt.raise_if_stopped()
        if self.block:
            await self.stopped.wait()
            attempt.raise_if_stopped()
        return Succeeded({"steps": len(self.steps)})


def _steps_handler(log: FakeLog, engine: StepsEngine) -> JobHandler:
    agentic = SkillRecord(name="echo", kind="agentic", entrypoint="SKILL.md")
    return JobHandler(
        events=log,
        deployments=FakeDeployments(agentic),
        engines={"agentic": engine},
        clock=Clock(),
        config=HandlerConfig(runner_id="r", max_attempts=3, heartbeat_s=10, max_log_bytes=1000),
    )


async def test_an_engine_of_many_steps_records_its_logs_and_outcome_through_the_attempt() -> None:
    log = FakeLog()
    msg = FakeMsg(JOB)
    await _steps_handler(log, StepsEngine([b"thinking\n", b"calling a tool\n"])).handle(msg)
    assert log.types()[0] == "job.started"
    assert log.types()[-1] == "job.succeeded"
    lines = [line for e in log.events(JobLogged) for line in e.lines]
    assert lines == ["thinking", "calling a tool"]
    assert log.events(JobSucceeded)[0].result == {"steps": 2}
    assert msg.acked == 1


async def test_an_engine_of_many_steps_is_told_to_stop_when_the_job_is_cancelled() -> None:
    log = FakeLog()
    engine = StepsEngine([b"step\n"], block=True)
    msg = FakeMsg(JOB)
    task = asyncio.create_task(_steps_handler(log, engine).handle(msg))
    await _stored(log, "job.started")
    log.put(JobCancelled(finished_at=T0), "job-1:terminal")
    await asyncio.wait_for(task, 5)
    assert engine.stopped.is_set()
    assert log.types()[-1] == "job.cancelled"
    assert msg.acked == 1


class _AppendsAfterLookingLog(FakeLog):
    """Something lands on the job right after the redelivery looked at its last event
    (before the new attempt's watch is in place)."""

    def __init__(self, event: Any, event_id: str) -> None:
        super().__init__()
        self._then = (event, event_id)

    async def last(self, job: RunJob) -> Any:
        found = await super().last(job)
        if self._then is not None:
            self.put(*self._then)
            self._then = None  # type: ignore[assignment]
        return found


def _started_once(log: FakeLog) -> None:
    log.put(
        JobStarted(attempt=1, deployment_id="dep-1", runner_id="r0", started_at=T0),
        "job-1:started:1",
    )


async def test_a_cancel_recorded_while_a_redelivery_looks_is_not_followed_by_a_second_end() -> None:
    log = _AppendsAfterLookingLog(JobCancelled(finished_at=T0), "job-1:terminal")
    _started_once(log)
    running = FakeRunning(RunFacts(report=Returned({}, 2), exit=None))
    msg = FakeMsg(JOB, attempt=2)
    await _handler(log, FakeEngine(running)).handle(msg)
    assert log.types() == ["job.started", "job.cancelled"]
    assert msg.acked == 1  # the job ended: nothing left to deliver


async def test_a_redelivery_takes_over_from_an_attempt_that_still_writes() -> None:
    log = _AppendsAfterLookingLog(JobLogged(stream="stdout", lines=["late line"]), "job-1:log:1:1")
    _started_once(log)
    running = FakeRunning(RunFacts(report=Returned({}, 2), exit=None))
    msg = FakeMsg(JOB, attempt=2)
    await _handler(log, FakeEngine(running)).handle(msg)
    assert log.types() == ["job.started", "job.log", "job.started", "job.succeeded"]
    assert log.events(JobSucceeded)[0].attempt == 2
    assert msg.acked == 1


# -- a work item sent along with its job.queued (queued_pending) ---------------------------

PENDING = msgspec.structs.replace(JOB, queued_pending=True)
QUEUED = JobQueued(skill="echo", inputs={"x": 1}, deployment_id="dep-1", created_at=T0)


async def test_a_pending_item_starts_on_its_job_queued_once_it_is_stored() -> None:
    log = FakeLog()
    # job.queued lands while the job already runs: the start waits for it, then
    # expects its sequence.
    running = FakeRunning(
        RunFacts(report=Returned({}, 2), exit=None),
        on_wait=lambda: log.put(QUEUED, "job-1:queued"),
    )
    msg = FakeMsg(PENDING)
    await _handler(log, FakeEngine(running)).handle(msg)
    assert log.types() == ["job.queued", "job.started", "job.succeeded"]
    assert msg.acked == 1


async def test_a_pending_item_of_a_job_cancelled_meanwhile_is_dropped() -> None:
    log = FakeLog()
    log.put(QUEUED, "job-1:queued")
    log.put(JobCancelled(finished_at=T0), "job-1:terminal")
    running = FakeRunning(RunFacts(report=Returned({}, 2), exit=None), block=True)
    msg = FakeMsg(PENDING)
    await _handler(log, FakeEngine(running)).handle(msg)
    assert log.types() == ["job.queued", "job.cancelled"]
    assert running.killed
    assert msg.acked == 1


async def test_a_first_delivery_finding_the_job_started_by_another_item_acks_it() -> None:
    # A redelivered submit sends a second item of the job; the one whose start loses
    # is done with, and must not come back as a redelivery that takes the job over.
    log = FakeLog()
    log.put(QUEUED, "job-1:queued")
    log.put(
        JobStarted(attempt=1, deployment_id="dep-1", runner_id="r0", started_at=T0),
        "job-1:started:other",
    )
    running = FakeRunning(RunFacts(report=Returned({}, 2), exit=None), block=True)
    msg = FakeMsg(msgspec.structs.replace(JOB, queued_seq=1))
    await _handler(log, FakeEngine(running)).handle(msg)
    assert log.types() == ["job.queued", "job.started"]
    assert running.killed
    assert msg.acked == 1


async def test_the_last_delivery_of_a_job_never_admitted_records_nothing() -> None:
    log = FakeLog()
    msg = FakeMsg(PENDING, attempt=4)
    await _handler(log, FakeEngine()).handle(msg)
    assert log.stored == []
    assert msg.acked == 1
