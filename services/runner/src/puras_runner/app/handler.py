"""Handling one delivery of a work item: the run flow of ARCHITECTURE §4.

For a job's attempt the events are, in order on ``ev.<project>.job.<id>``: ``JobStarted``
(``<job>:started:<attempt>``), zero or more ``JobLogged`` (``<job>:log:<attempt>:<n>``)
and one terminal event (``<job>:terminal``); then the work item is acked. Every publish
after ``JobStarted`` expects the subject's last sequence to be this attempt's previous
publish, so an attempt that lost the job to a newer one (its runner stalled past
``ack_wait``) gets a conflict, kills its process and leaves the work item alone.

While the job runs the handler also watches the job's subject: a newer attempt starting,
or the job ending elsewhere (cancelled), kills the process at once instead of at the
next publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import msgspec
from opentelemetry import trace
from structlog.contextvars import bound_contextvars

from puras_common.bus import ConcurrencyConflict
from puras_common.clock import Clock
from puras_common.events.base import Event
from puras_common.events.commands import RunJob
from puras_common.events.types import JobStarted
from puras_common.logging import get_logger
from puras_common.schemas import validate_instance
from puras_common.telemetry import extract_context, tracer
from puras_runner.app.ports import (
    Engine,
    JobEventLog,
    Prepared,
    Running,
    SecretsProvider,
    WorkMessage,
)
from puras_runner.domain import errors
from puras_runner.domain.errors import PreparationFailed
from puras_runner.domain.jobs import (
    TERMINAL_EVENT_TYPES,
    Delivery,
    classify_delivery,
    cpu_limits,
    log_event_id,
    log_events,
    runner_lost_event,
    started_event,
    started_event_id,
    terminal_event,
    terminal_event_id,
    timeout_for,
)
from puras_runner.domain.logs import LogBatch, LogCollector, Stream
from puras_runner.domain.outcome import Failed, Outcome, RunLimits, Succeeded, decide_outcome

__all__ = ["HandlerConfig", "JobHandler"]

log = get_logger(__name__)

_decode_run_job = msgspec.json.Decoder(RunJob).decode

LOST_RETRIES: Final = 5

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HandlerConfig:
    runner_id: str
    max_attempts: int
    default_timeout_s: float
    heartbeat_s: float
    memory_limit_mb: int
    max_result_bytes: int
    max_log_bytes: int
    log_flush_s: float = 0.1
    max_processes: int = 0
    """The per-job process limit the runner's cgroups enforce (0: none), for errors."""


def _check_output(schema: Mapping[str, Any], instance: object) -> str | None:
    problem: str | None = validate_instance(schema, instance, root="result")
    return problem


class _Stop(Exception):
    """The attempt must stop without recording an outcome."""

    def __init__(self, reason: str, *, ack: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ack = ack


class JobHandler:
    def __init__(
        self,
        *,
        events: JobEventLog,
        engine: Engine[Any],
        secrets: SecretsProvider,
        clock: Clock,
        config: HandlerConfig,
    ) -> None:
        self.events = events
        self.engine = engine
        self.secrets = secrets
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
            heartbeat = asyncio.create_task(self._heartbeat(msg))
            try:
                await self._handle(job, attempt, msg)
            finally:
                heartbeat.cancel()

    async def _heartbeat(self, msg: WorkMessage) -> None:
        # +WPI resets the ack_wait timer: a long job is not redelivered while it runs.
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            try:
                await msg.in_progress()
            except Exception as exc:  # a lost connection must not end the job
                log.warning("heartbeat failed", error=str(exc))

    async def _handle(self, job: RunJob, attempt: int, msg: WorkMessage) -> None:
        delivery = classify_delivery(attempt, self.config.max_attempts)
        if delivery is Delivery.END_LOST:
            await self._end_lost(job)
            await msg.ack()
            return
        if delivery is Delivery.RETRY:
            last = await self.events.last(job)
            if last is not None and last.type in TERMINAL_EVENT_TYPES:
                log.info("job already ended; redelivery acked", last=last.type)
                await msg.ack()
                return
        run = _Attempt(self, job, attempt)
        try:
            await run.run()
        except _Stop as stop:
            ack = stop.ack or await self._ended(job)
            log.warning("attempt stopped", reason=stop.reason, acked=ack)
            if ack:
                await msg.ack()
            # Otherwise another attempt owns the job, or this one could not record
            # anything: not acked, JetStream redelivers it unless someone finishes it.
            return
        except asyncio.CancelledError:
            # Runner shutting down past its grace period: end the process and give the
            # job back now rather than after ack_wait.
            if run.execution is not None:
                run.execution.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(msg.nak())
            raise
        finally:
            if run.execution is not None:
                self._teardown(run.execution)
        await msg.ack()

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
            started = await self.events.latest_started(job)
            event = runner_lost_event(
                job,
                max_attempts=self.config.max_attempts,
                started_at=started.started_at if started is not None else None,
                now=self.clock.now(),
            )
            try:
                await self.events.append(
                    event,
                    job=job,
                    event_id=terminal_event_id(job.job_id),
                    expected_seq=last.seq if last is not None else 0,
                )
            except ConcurrencyConflict:
                continue  # something was appended meanwhile: look again
            log.warning("job failed: runner lost", max_attempts=self.config.max_attempts)
            return
        raise RuntimeError(
            f"job {job.job_id}: could not record 'runner lost' after {LOST_RETRIES} tries"
        )

    def _teardown(self, execution: Running) -> None:
        task = asyncio.create_task(self._close(execution))
        self._teardowns.add(task)
        task.add_done_callback(self._teardowns.discard)

    @staticmethod
    async def _close(execution: Running) -> None:
        try:
            await execution.close()
        except Exception:
            log.exception("job teardown failed")

    async def drain(self) -> None:
        """Wait for the teardown of every finished job (workdirs removed)."""
        while self._teardowns:
            await asyncio.gather(*list(self._teardowns), return_exceptions=True)


class _Attempt:
    """One attempt of one job on this runner."""

    def __init__(self, handler: JobHandler, job: RunJob, attempt: int) -> None:
        self.h = handler
        self.job = job
        self.attempt = attempt
        self.execution: Running | None = None
        self._loop = asyncio.get_running_loop()
        self._stop: asyncio.Future[_Stop] = self._loop.create_future()
        self._seq: int | None = None
        self._started: asyncio.Task[int] | None = None
        self._publish_lock = asyncio.Lock()
        self._log_n = 0
        self._secrets: list[str] = []
        self._collector = LogCollector(handler.config.max_log_bytes)
        self._has_output = asyncio.Event()
        self._finishing = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._started_at = handler.clock.now()

    # -- the flow ------------------------------------------------------------------------

    async def run(self) -> None:
        h, job = self.h, self.job
        t0 = time.perf_counter()
        self._started_at = h.clock.now()
        # Subscribe before anything is published: a publish's round trip orders the
        # subscription first, so nothing appended after our start is missed.
        watch = await h.events.watch(job, self._on_event)
        try:
            try:
                outcome = await self._execute()
                await self._stop_flusher()
                await self._publish_logs(self._collector.finish(), final=True)
            except ConcurrencyConflict as exc:
                raise _Stop(f"the job moved on: {exc}", ack=False) from None
            finally:
                if self._flusher is not None and not self._flusher.done():
                    self._flusher.cancel()
            if isinstance(outcome, Failed) and self._secrets:
                outcome = Failed(errors.mask_secrets(outcome.error, self._secrets))
            event = terminal_event(
                job,
                outcome,
                attempt=self.attempt,
                started_at=self._started_at,
                finished_at=h.clock.now(),
            )
            try:
                await self._publish(event, terminal_event_id(job.job_id))
            except ConcurrencyConflict as exc:
                raise _Stop(f"the job moved on: {exc}", ack=False) from None
        finally:
            await watch.close()
        log.info(
            "job finished",
            status="succeeded" if isinstance(outcome, Succeeded) else "failed",
            ms=round((time.perf_counter() - t0) * 1000, 2),
            error=outcome.error[:200] if isinstance(outcome, Failed) else None,
        )

    def _begin(self) -> None:
        """Record the start (``JobStarted``), once, without waiting for the ack: it is
        sent while the job's process already runs, and every later publish waits for it."""
        if self._started is not None:
            return
        h, job = self.h, self.job
        self._started = asyncio.create_task(
            h.events.append(
                started_event(job, self.attempt, h.config.runner_id, self._started_at),
                job=job,
                event_id=started_event_id(job.job_id, self.attempt),
                # The first attempt starts only on the job as the scheduler left it: a
                # cancel appended meanwhile makes this fail, and the attempt stops.
                expected_seq=job.queued_seq if self.attempt == 1 and job.queued_seq else None,
            )
        )
        self._started.add_done_callback(self._on_started)

    async def _execute(self) -> Outcome:
        h, job, cfg = self.h, self.job, self.h.config
        # A deployment already prepared is a dictionary look-up: no task, no waiting.
        prepared: Prepared | None = h.engine.lookup(job)
        if prepared is None:
            try:
                prepared = await self._unless_stopped(h.engine.prepare(job))
            except PreparationFailed as exc:
                return Failed(str(exc))
        assert prepared is not None
        timeout_s = timeout_for(job, prepared.spec.timeout_seconds, cfg.default_timeout_s)
        secrets = await h.secrets.secrets_for(job.project_id)
        if secrets:
            self._secrets = list(secrets.values())
            values = self._secrets
            self._collector = LogCollector(
                cfg.max_log_bytes, mask=lambda line: errors.mask_secrets(line, values)
            )
        try:
            execution = await h.engine.start(
                prepared,
                job,
                attempt=self.attempt,
                timeout_s=timeout_s,
                secrets=secrets,
                on_output=self._on_output,
            )
        except PreparationFailed as exc:
            return Failed(str(exc))
        self.execution = execution
        # The job runs from here on; its start is recorded meanwhile (off its path).
        self._begin()
        # A stop (newer attempt, job ended elsewhere, a publish failing) ends the process;
        # wait() then returns at once.
        self._stop.add_done_callback(lambda _f: execution.kill())
        try:
            facts = await execution.wait(timeout_s)
        except asyncio.CancelledError:
            execution.kill()
            raise
        if self._stop.done():
            raise self._stop.result()
        limits = RunLimits(
            timeout_s=timeout_s,
            memory_limit_mb=cfg.memory_limit_mb,
            max_result_bytes=cfg.max_result_bytes,
            cpu_limit_s=cpu_limits(timeout_s)[0],
            max_processes=cfg.max_processes,
        )
        return decide_outcome(
            facts, limits, output_schema=prepared.spec.output_schema, check_schema=_check_output
        )

    async def _unless_stopped(self, aw: Awaitable[T]) -> T:
        """``await aw`` (a slow preparation: a bundle download, a venv build) unless the
        attempt is told to stop first; then raise that stop."""
        task = asyncio.ensure_future(aw)
        await asyncio.wait((task, self._stop), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(BaseException):  # cancelled, or failed meanwhile: moot
            await task
        raise self._stop.result()

    # -- events from elsewhere, publish failures -------------------------------------------

    def _signal_stop(self, stop: _Stop) -> None:
        if not self._stop.done():
            self._stop.set_result(stop)

    def _on_event(self, type_: str, event: Event | None) -> None:
        if self._finishing.is_set():
            return
        if type_ in TERMINAL_EVENT_TYPES:
            self._signal_stop(_Stop(f"job ended elsewhere ({type_})", ack=True))
        elif isinstance(event, JobStarted) and event.attempt > self.attempt:
            self._signal_stop(
                _Stop(f"attempt {event.attempt} started on {event.runner_id}", ack=False)
            )

    def _on_started(self, task: asyncio.Task[int]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._signal_stop(_Stop(f"could not record the start: {exc}", ack=False))

    def _on_flusher_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, ConcurrencyConflict):
            self._signal_stop(
                _Stop("a newer attempt owns the job (log publish conflict)", ack=False)
            )
        elif exc is not None:
            self._signal_stop(_Stop(f"could not record logs: {exc}", ack=False))

    # -- publishing --------------------------------------------------------------------------

    async def _publish(self, event: Event, event_id: str) -> None:
        self._begin()  # a job that never started a process still gets its JobStarted
        async with self._publish_lock:
            if self._seq is None:
                assert self._started is not None
                self._seq = await self._started
            self._seq = await self.h.events.append(
                event, job=self.job, event_id=event_id, expected_seq=self._seq
            )

    async def _publish_logs(self, batches: list[LogBatch], *, final: bool) -> None:
        truncated = final and self._collector.truncated
        for event in log_events(batches, truncated=truncated):
            self._log_n += 1
            await self._publish(event, log_event_id(self.job.job_id, self.attempt, self._log_n))

    def _on_output(self, stream: Stream, data: bytes) -> None:
        self._collector.feed(stream, data)
        if self._collector.has_ready():
            if self._flusher is None:
                # Only a job that prints pays for a flusher.
                self._flusher = asyncio.create_task(self._flush_loop())
                self._flusher.add_done_callback(self._on_flusher_done)
            self._has_output.set()

    async def _flush_loop(self) -> None:
        flush_s = self.h.config.log_flush_s
        while not self._finishing.is_set():
            await self._has_output.wait()
            if self._finishing.is_set():
                return
            # Gather what arrives in the next flush_s: one event for many lines.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finishing.wait(), flush_s)
            self._has_output.clear()
            if self._finishing.is_set():
                return  # the final flush takes everything
            await self._publish_logs(self._collector.drain(), final=False)

    async def _stop_flusher(self) -> None:
        self._finishing.set()
        self._has_output.set()
        if self._flusher is not None:
            # Not cancelled: a publish in flight must land (or fail) before the next one
            # is sent, or the expected-sequence chain breaks.
            await self._flusher
