"""Handling one delivery of a work item: the run flow of ARCHITECTURE §4.

A delivery is classified first (first attempt, retry, the extra one past the last
attempt that only fails the job ``runner lost``). An attempt then finds the job's
deployment (shared by every engine: :class:`~puras_runner.app.ports.Deployments`) and
the skill it names, and hands it to the engine of the skill's kind; the
:class:`~puras_runner.app.attempt.Attempt` records the start, the logs and the outcome.
The work item is acked unless the job must run again elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

import msgspec
from opentelemetry import trace
from structlog.contextvars import bound_contextvars

from puras_common.bus import ConcurrencyConflict
from puras_common.clock import Clock
from puras_common.events.commands import RunJob
from puras_common.events.ids import job_terminal_id
from puras_common.logging import get_logger
from puras_common.skills import UnknownSkill, find_skill
from puras_common.telemetry import extract_context, tracer
from puras_runner.app.attempt import Attempt, AttemptStopped
from puras_runner.app.drive_changes import DriveChanges
from puras_runner.app.engines import Engine
from puras_runner.app.ports import Deployments, JobEventLog, WorkMessage
from puras_runner.app.running import RunningJobs
from puras_runner.domain import errors
from puras_runner.domain.errors import PreparationFailed
from puras_runner.domain.jobs import (
    TERMINAL_EVENT_TYPES,
    Delivery,
    classify_delivery,
    runner_lost_event,
)
from puras_runner.domain.outcome import Failed, Outcome

__all__ = ["HandlerConfig", "JobHandler"]

log = get_logger(__name__)

_decode_run_job = msgspec.json.Decoder(RunJob).decode

LOST_RETRIES: Final = 5


@dataclass(frozen=True, slots=True)
class HandlerConfig:
    runner_id: str
    max_attempts: int
    heartbeat_s: float
    max_log_bytes: int
    log_flush_s: float = 0.1


class JobHandler:
    def __init__(
        self,
        *,
        events: JobEventLog,
        deployments: Deployments,
        engines: Mapping[str, Engine],
        clock: Clock,
        config: HandlerConfig,
        running: RunningJobs | None = None,
        drive_changes: DriveChanges | None = None,
    ) -> None:
        self.drive_changes = drive_changes
        """What jobs change in their drive, announced before their end (``None``: not)."""
        self.running = running
        """The attempts running here, for their media calls (``None``: not tracked)."""
        self.events = events
        self.deployments = deployments
        self.engines = engines
        """By skill kind (``deterministic``, ``agentic``)."""
        self.clock = clock
        self.config = config
        self._teardowns: set[asyncio.Task[None]] = set()
        self._tracer = tracer("puras.runner")

    async def handle(self, msg: WorkMessage) -> None:
        """Handle one delivery; acks it unless the job must run again elsewhere."""
        try:
            job = _decode_run_job(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # It can never run, and without a job id there is no job to fail: a loud
            # log line and no redelivery.
            log.error(
                "undecodable work item terminated", error=str(exc), data=bytes(msg.data[:300])
            )
            await msg.term()
            return
        attempt = msg.attempt
        ctx = extract_context(msg.headers)
        with (
            bound_contextvars(
                project_id=job.project_id,
                job_id=job.job_id,
                deployment_id=job.deployment_id,
                attempt=attempt,
            ),
            self._tracer.start_as_current_span(
                "runner.job",
                context=ctx,
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "puras.job_id": job.job_id,
                    "puras.project_id": job.project_id,
                    "puras.skill": job.skill,
                    "puras.attempt": attempt,
                },
            ),
        ):
            heartbeat = _Heartbeat(msg, self.config.heartbeat_s)
            try:
                await self._handle(job, attempt, msg)
            finally:
                heartbeat.stop()

    async def _handle(self, job: RunJob, attempt: int, msg: WorkMessage) -> None:
        delivery = classify_delivery(attempt, self.config.max_attempts)
        if delivery is Delivery.END_LOST:
            await self._end_lost(job)
            await msg.ack()
            return
        found_seq: int | None = None
        if delivery is Delivery.RETRY:
            last = await self.events.last(job)
            if last is not None and last.type in TERMINAL_EVENT_TYPES:
                log.info("job already ended; redelivery acked", last=last.type)
                await msg.ack()
                return
            # None with ``queued_pending``: job.queued is not stored yet, and the
            # attempt waits for it before it starts (Attempt._queued_seq).
            found_seq = last.seq if last is not None else None
        run = Attempt(
            events=self.events,
            job=job,
            attempt=attempt,
            runner_id=self.config.runner_id,
            clock=self.clock,
            max_log_bytes=self.config.max_log_bytes,
            log_flush_s=self.config.log_flush_s,
            found_seq=found_seq,
        )
        try:
            await self._run(run)
        except AttemptStopped as stop:
            ack = stop.ack or await self._ended(job)
            log.warning("attempt stopped", reason=stop.reason, acked=ack)
            if ack:
                await msg.ack()
            # Otherwise another attempt owns the job, or this one could not record
            # anything: not acked, JetStream redelivers it unless someone finishes it.
            return
        except asyncio.CancelledError:
            # Runner shutting down past its grace period: the engine ended what it ran;
            # give the job back now rather than after ack_wait.
            with contextlib.suppress(Exception):
                await asyncio.shield(msg.nak())
            raise
        finally:
            for cleanup in run.cleanups:
                self._teardown(cleanup)
        await msg.ack()

    async def _run(self, run: Attempt) -> None:
        t0 = time.perf_counter()
        await run.open()
        if self.running is not None:
            run.job_env = self.running.add(run)
        try:
            outcome = await self._with_drive(run)
            # The terminal event: nothing but the drive changes (D7, D8) comes between
            # the job's result and its publish; the bookkeeping below waits for it.
            outcome = await run.finish(outcome)
        finally:
            if self.running is not None:
                self.running.remove(run)
            await run.close()
        ms = round((time.perf_counter() - t0) * 1000, 2)
        if isinstance(outcome, Failed):
            log.info("job finished", status="failed", ms=ms, error=outcome.error[:200])
        else:
            # Its facts are in the event log; a rendered line per succeeded job costs
            # the runner ~0.1 ms of CPU, a large share of its own work on a short job.
            log.debug("job finished", status="succeeded", ms=ms)

    async def _with_drive(self, run: Attempt) -> Outcome:
        """The job's outcome, what it changed in its drive announced before it."""
        changes = self.drive_changes
        if changes is None:
            return await self._outcome(run)
        if changes.syncs:
            try:
                await run.unless_stopped(changes.prepare(run))
            except AttemptStopped:
                raise
            except Exception as exc:
                return Failed(f"the project's drive could not be synced: {exc}")
        scan = await changes.begin(run)
        outcome = await self._outcome(run)
        if scan is not None:
            await changes.finish(run, scan)
        return outcome

    async def _outcome(self, run: Attempt) -> Outcome:
        """Find the job's deployment and skill, and run it on the engine of its kind."""
        job = run.job
        # A deployment already here is a dictionary look-up: no task, no waiting.
        deployment = self.deployments.cached(job.deployment_id)
        if deployment is None:
            try:
                deployment = await run.unless_stopped(self.deployments.get(job))
            except PreparationFailed as exc:
                return Failed(str(exc))
        skill = find_skill(deployment, job.skill, at="run")
        if isinstance(skill, UnknownSkill):
            return Failed(skill.message)
        engine = self.engines.get(skill.kind)
        if engine is None:
            return Failed(
                errors.unsupported_kind_error(
                    skill.name, skill.kind, skill.entrypoint, list(self.engines)
                )
            )
        return await engine.run(run, deployment, skill)

    async def _ended(self, job: RunJob) -> bool:
        last = await self.events.last(job)
        return last is not None and last.type in TERMINAL_EVENT_TYPES

    async def _end_lost(self, job: RunJob) -> None:
        """The delivery after the last attempt: fail the job unless it already ended."""
        for _ in range(LOST_RETRIES):
            last = await self.events.last(job)
            if last is not None and last.type in TERMINAL_EVENT_TYPES:
                log.info("job already ended; final delivery acked", last=last.type)
                return
            if last is None:
                # Never admitted (its job.queued, sent alongside this item, was not
                # stored): its submit is redelivered and dispatches an item of its own.
                # A job.failed now would come before the job.queued.
                log.warning("work of a job never admitted dropped")
                return
            started = await self.events.latest_started(job)
            event = runner_lost_event(
                max_attempts=self.config.max_attempts,
                started_at=started.started_at if started is not None else None,
                now=self.clock.now(),
            )
            try:
                await self.events.append(
                    event,
                    job=job,
                    event_id=job_terminal_id(job.job_id),
                    expected_seq=last.seq if last is not None else 0,
                )
            except ConcurrencyConflict:
                continue  # something was appended meanwhile: look again
            log.warning("job failed: runner lost", max_attempts=self.config.max_attempts)
            return
        raise RuntimeError(
            f"job {job.job_id}: could not record 'runner lost' after {LOST_RETRIES} tries"
        )

    def _teardown(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        task = asyncio.create_task(self._close(cleanup))
        self._teardowns.add(task)
        task.add_done_callback(self._teardowns.discard)

    @staticmethod
    async def _close(cleanup: Callable[[], Awaitable[None]]) -> None:
        try:
            await cleanup()
        except Exception:
            log.exception("job teardown failed")

    async def drain(self) -> None:
        """Wait for the teardown of every finished job (workdirs removed)."""
        while self._teardowns:
            await asyncio.gather(*list(self._teardowns), return_exceptions=True)


class _Heartbeat:
    """``+WPI`` every ``every_s`` while a job runs: it resets the work item's
    ``ack_wait``, so a long job is not redelivered while it runs. A timer, not a task:
    the many jobs shorter than one period cost a timer handle and nothing else."""

    __slots__ = ("_every", "_handle", "_loop", "_msg", "_sending", "_stopped")

    def __init__(self, msg: WorkMessage, every_s: float) -> None:
        self._msg = msg
        self._every = every_s
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        self._sending: asyncio.Task[None] | None = None
        self._handle = self._loop.call_later(every_s, self._beat)

    def stop(self) -> None:
        self._stopped = True
        self._handle.cancel()
        if self._sending is not None:
            self._sending.cancel()

    def _beat(self) -> None:
        self._sending = self._loop.create_task(self._send())

    async def _send(self) -> None:
        try:
            await self._msg.in_progress()
        except Exception as exc:  # a lost connection must not end the job
            log.warning("heartbeat failed", error=str(exc))
        if not self._stopped:
            self._handle = self._loop.call_later(self._every, self._beat)
