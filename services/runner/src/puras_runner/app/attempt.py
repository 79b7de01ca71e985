"""One attempt of one job, as the event log sees it: started, logs, one terminal event.

For a job's attempt the events are, in order on ``ev.<project>.job.<id>``: ``JobStarted``
(``<job>:started:<attempt>``), zero or more ``JobLogged`` (``<job>:log:<attempt>:<n>``)
and one terminal event (``<job>:terminal``). Every publish after ``JobStarted`` expects
the subject's last sequence to be this attempt's previous publish, so an attempt that
lost the job to a newer one (its runner stalled past ``ack_wait``) gets a conflict and
stops instead of writing over it.

Nothing here knows how the job runs: an engine feeds output to :meth:`Attempt.on_output`,
calls :meth:`Attempt.begin` once the job is under way, kills what it runs when told to
stop (:meth:`Attempt.on_stop`) and hands back an outcome, which the handler records
with :meth:`Attempt.finish`. One process per job or a loop of model calls and tool
processes record their attempt the same way.

While the job runs the attempt also watches the job's subject: a newer attempt starting,
or the job ending elsewhere (cancelled), tells the engine to stop at once instead of at
the next publish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TypeVar

from puras_common.bus import ConcurrencyConflict
from puras_common.clock import Clock
from puras_common.events.base import Event
from puras_common.events.commands import RunJob
from puras_common.events.ids import job_log_id, job_started_id, job_terminal_id
from puras_common.events.types import JobCharged, JobQueued, JobStarted
from puras_runner.app.ports import JobEventLog, Watch
from puras_runner.domain import errors
from puras_runner.domain.drive_changes import ToolWindow
from puras_runner.domain.jobs import (
    TERMINAL_EVENT_TYPES,
    log_events,
    started_event,
    terminal_event,
)
from puras_runner.domain.logs import LogBatch, LogCollector, Stream
from puras_runner.domain.outcome import Failed, Outcome

__all__ = ["PASSING_FACTS", "Attempt", "AttemptStopped", "LogFlusher", "WorkSuperseded"]

T = TypeVar("T")

Cleanup = Callable[[], Awaitable[None]]

PASSING_FACTS: frozenset[str] = frozenset({JobCharged.type})
"""Events other writers append to a job while an attempt runs it, without taking it over
(billing's ``job.cost``): the attempt's chain goes on after them."""
PASSING_FACTS_RETRIES = 20
QUEUED_WAIT_S = 60.0
"""How long an attempt waits for the job.queued its work item came with (published
alongside it) to be stored. Far beyond the scheduler's publish timeout: past it, the
publish failed, the submit is redelivered and dispatches a work item of its own."""
QUEUED_POLL_S = (0.0002, 0.1)
"""First and longest pause between reads of the job's subject while job.queued is not
stored yet (it nearly always is by the time the runner looks)."""


class WorkSuperseded(ConcurrencyConflict):
    """This work item is not the job's to run: another attempt started it or it ended
    (a second item of one job), or its job.queued was never stored. The item is done
    with; the job is someone else's."""


class AttemptStopped(Exception):
    """The attempt must stop without recording an outcome."""

    def __init__(self, reason: str, *, ack: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.ack = ack
        """Whether the work item is done with (the job ended elsewhere)."""


class LogFlusher:
    """A job's output as ``JobLogged`` batches: one event per ``flush_s`` of output.

    Only a job that prints pays for the flushing task. :meth:`finish` waits for a
    publish in flight instead of cancelling it: it must land (or fail) before the next
    publish is sent, or the expected-sequence chain breaks.
    """

    def __init__(
        self,
        collector: LogCollector,
        *,
        flush_s: float,
        publish: Callable[[list[LogBatch]], Awaitable[None]],
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self.collector = collector
        self._flush_s = flush_s
        self._publish = publish
        self._on_failure = on_failure
        self._has_output = asyncio.Event()
        self._finishing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def feed(self, stream: Stream, data: bytes) -> None:
        self.collector.feed(stream, data)
        if self.collector.has_ready():
            if self._task is None:
                self._task = asyncio.create_task(self._loop())
                self._task.add_done_callback(self._on_done)
            self._has_output.set()

    @property
    def finishing(self) -> bool:
        return self._finishing.is_set()

    async def finish(self) -> list[LogBatch]:
        """Stop flushing; what is left to publish (the final batches)."""
        self._finishing.set()
        self._has_output.set()
        if self._task is not None:
            await self._task
        return self.collector.finish()

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _loop(self) -> None:
        while not self._finishing.is_set():
            await self._has_output.wait()
            if self._finishing.is_set():
                return
            # Gather what arrives in the next flush_s: one event for many lines.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finishing.wait(), self._flush_s)
            self._has_output.clear()
            if self._finishing.is_set():
                return  # the final flush takes everything
            await self._publish(self.collector.drain())

    def _on_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._on_failure(exc)


class Attempt:
    """One attempt of one job on this runner: its events and its stop signal."""

    def __init__(
        self,
        *,
        events: JobEventLog,
        job: RunJob,
        attempt: int,
        runner_id: str,
        clock: Clock,
        max_log_bytes: int,
        log_flush_s: float,
        found_seq: int | None = None,
    ) -> None:
        self.events = events
        self._found_seq = found_seq
        """A redelivery: the sequence of the job's last event when the handler looked
        (it was not terminal). The start expects it, so an end recorded since (a cancel
        appended before this attempt's watch was in place) is never followed by a
        second one."""
        self.job = job
        self.number = attempt
        """1-based; the work item's delivery count."""
        self._runner_id = runner_id
        self._clock = clock
        self._max_log_bytes = max_log_bytes
        self._stop: asyncio.Future[AttemptStopped] = asyncio.get_running_loop().create_future()
        self._seq: int | None = None
        self._started: asyncio.Task[int] | None = None
        self._publish_lock = asyncio.Lock()
        self._log_n = 0
        self._secrets: list[str] = []
        self._flusher = LogFlusher(
            LogCollector(max_log_bytes),
            flush_s=log_flush_s,
            publish=lambda batches: self._publish_logs(batches, final=False),
            on_failure=self._on_flush_failed,
        )
        self._watch: Watch | None = None
        self._queued: asyncio.Task[int] | None = None
        """The read of job.queued's sequence, for an item sent along with it."""
        self.started_at: datetime = clock.now()
        self.cleanups: list[Cleanup] = []
        """What the engine left to tear down once the attempt is recorded (off its path)."""
        self.spent = 0
        """What the attempt's billable calls cost so far, as billing prices them: model
        calls and media calls against one cost cap (Z1)."""
        self.media_calls: int | None = None
        """Media calls of the job so far, earlier attempts' included (``None``: not
        counted yet; counted from the log at the first call)."""
        self.media_lock = asyncio.Lock()
        """Numbers the attempt's media calls one at a time (they may run concurrently)."""
        self.tool_windows: list[ToolWindow] = []
        """When each tool call of an agent run ran (which tool wrote a drive file)."""
        self.drive_since_ns = 0
        """When the scan of its drive began (``app.drive_changes``)."""
        self.announced: set[str] = set()
        """Drive paths the runner announced itself (a media output)."""
        self.job_env: dict[str, str] = {}
        """What the job's environment gets for the Puras API (its token, the API's
        address): set when the attempt is registered as running."""

    # -- the attempt's life ----------------------------------------------------------------

    async def open(self) -> None:
        """Watch the job's subject. Before anything is published: a publish's round trip
        orders the subscription first, so nothing appended after our start is missed."""
        self.started_at = self._clock.now()
        if self.job.queued_pending and (self.number == 1 or self._found_seq is None):
            # Read job.queued's sequence now, alongside the watch and the job's fork: by
            # the time the start is appended it is known, and the start waits for no
            # extra round trip.
            self._queued = asyncio.create_task(self._queued_seq())
            self._queued.add_done_callback(self._on_queued)
        self._watch = await self.events.watch(self.job, self._on_event)

    async def close(self) -> None:
        self._flusher.cancel()
        if self._queued is not None and not self._queued.done():
            self._queued.cancel()
        if self._watch is not None:
            await self._watch.close()

    def begin(self) -> None:
        """Record the start (``JobStarted``), once, without waiting for the ack: it is
        sent while the job already runs, and every later publish waits for it."""
        if self._started is not None:
            return
        job = self.job
        # The first attempt starts only on the job as the scheduler left it, a later one
        # on the job as its delivery found it: a cancel appended meanwhile makes this
        # fail, and the attempt stops.
        expected = (job.queued_seq or None) if self.number == 1 else self._found_seq
        self._started = asyncio.create_task(self._append_started(expected))
        self._started.add_done_callback(self._on_started)

    async def _queued_seq(self) -> int:
        """The sequence to start on when the work item came with its job.queued in
        flight (``queued_pending``): job.queued's, or that of the passing facts after
        it; waits for job.queued to be stored, and never starts a job without it."""
        job = self.job
        loop = asyncio.get_running_loop()
        deadline = loop.time() + QUEUED_WAIT_S
        pause, longest = QUEUED_POLL_S
        while True:
            last = await self.events.last(job)
            if last is not None:
                if last.type == JobQueued.type:
                    return last.seq
                if self.number > 1:
                    return last.seq  # a later attempt takes over, as on any redelivery
                events = await self.events.since(job, 0)
                queued = [i for i, e in enumerate(events) if e.type == JobQueued.type]
                if not queued or any(e.type not in PASSING_FACTS for e in events[queued[-1] + 1 :]):
                    raise WorkSuperseded(f"{job.job_id}: the job moved on before this start")
                return events[-1].seq
            if loop.time() >= deadline:
                raise WorkSuperseded(f"{job.job_id}: its job.queued was never stored")
            await asyncio.sleep(pause)
            pause = min(pause * 2, longest)

    async def _append_started(self, expected: int | None) -> int:
        job = self.job
        if expected is None and self._queued is not None:
            expected = await self._queued
        event = started_event(job, self.number, self._runner_id, self.started_at)
        event_id = job_started_id(job.job_id, self.number)
        for _ in range(PASSING_FACTS_RETRIES):
            try:
                return await self.events.append(
                    event, job=job, event_id=event_id, expected_seq=expected
                )
            except ConcurrencyConflict:
                if expected is None:
                    raise
                newer = await self.events.since(job, expected)
                # A first attempt starts on nothing but the job as queued (billing's
                # costs aside). A later one takes the job over from an earlier attempt
                # that may still be writing (its runner stalled past ack_wait): only an
                # end recorded meanwhile stops it.
                passing = PASSING_FACTS if self.number == 1 else None
                if not newer or any(
                    e.type in TERMINAL_EVENT_TYPES
                    or (passing is not None and e.type not in passing)
                    for e in newer
                ):
                    if self.number == 1 and any(
                        e.type in TERMINAL_EVENT_TYPES or e.type == JobStarted.type for e in newer
                    ):
                        # A first delivery finds the job started or ended: the item is
                        # a second one of the job (a redelivered submit sends another).
                        raise WorkSuperseded(
                            f"{job.job_id}: the job moved on before this start"
                        ) from None
                    raise
                expected = newer[-1].seq
        raise ConcurrencyConflict(f"{job.job_id}: other writers kept appending")

    async def finish(self, outcome: Outcome) -> Outcome:
        """Record the last logs and the outcome (secrets masked): the terminal event.
        Raises :class:`AttemptStopped` when the job moved on meanwhile."""
        try:
            try:
                batches = await self._flusher.finish()
                await self._publish_logs(batches, final=True)
            except ConcurrencyConflict as exc:
                raise AttemptStopped(f"the job moved on: {exc}", ack=False) from None
            if isinstance(outcome, Failed) and self._secrets:
                outcome = Failed(errors.mask_secrets(outcome.error, self._secrets))
            event = terminal_event(
                outcome,
                attempt=self.number,
                started_at=self.started_at,
                finished_at=self._clock.now(),
            )
            await self._publish(event, job_terminal_id(self.job.job_id))
        except ConcurrencyConflict as exc:
            raise AttemptStopped(f"the job moved on: {exc}", ack=False) from None
        return outcome

    async def record(self, event: Event, event_id: str) -> None:
        """Append one of the job's progress facts (an agent step) in the attempt's chain,
        and wait for it to be stored. Raises :class:`AttemptStopped` when the job moved
        on meanwhile."""
        try:
            await self._publish(event, event_id)
        except ConcurrencyConflict as exc:
            raise AttemptStopped(f"the job moved on: {exc}", ack=False) from None

    async def record_late(self, event: Event, event_id: str) -> None:
        """Append a fact that happened whatever became of the job (a model call that
        was in flight when the job was cancelled: it was made, and is paid for), outside
        the attempt's chain."""
        async with self._publish_lock:
            await self.events.append(event, job=self.job, event_id=event_id, expected_seq=None)

    def after(self, cleanup: Cleanup) -> None:
        """Run ``cleanup`` once the attempt is over (its outcome recorded or not)."""
        self.cleanups.append(cleanup)

    # -- what the engine feeds in ---------------------------------------------------------

    def mask(self, secrets: Iterable[str]) -> None:
        """Mask these values in the job's logs and error (X2); called before the job
        writes anything."""
        self._secrets = list(secrets)
        if not self._secrets:
            return
        values = self._secrets
        self._flusher.collector = LogCollector(
            self._max_log_bytes,
            mask=lambda line: errors.mask_secrets(line, values),
            mask_cut=lambda line: errors.mask_cut_end(line, values),
        )

    def on_output(self, stream: Stream, data: bytes) -> None:
        """The job's output as it is written (an :data:`~puras_runner.app.ports.OutputSink`)."""
        self._flusher.feed(stream, data)

    # -- stopping ---------------------------------------------------------------------------

    def on_stop(self, kill: Callable[[], None]) -> None:
        """Call ``kill`` when the attempt must stop (at once if it already must)."""
        self._stop.add_done_callback(lambda _f: kill())

    @property
    def stopped(self) -> bool:
        return self._stop.done()

    def raise_if_stopped(self) -> None:
        if self._stop.done():
            raise self._stop.result()

    async def unless_stopped(self, aw: Awaitable[T]) -> T:
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

    def _on_queued(self, task: asyncio.Task[int]) -> None:
        # The job is not this item's to run: stop now, before its process if it can be.
        if not task.cancelled() and isinstance(task.exception(), WorkSuperseded):
            self._signal_stop(AttemptStopped(f"not started: {task.exception()}", ack=True))

    def _signal_stop(self, stop: AttemptStopped) -> None:
        if not self._stop.done():
            self._stop.set_result(stop)

    def _on_event(self, type_: str, event: Event | None) -> None:
        if self._flusher.finishing:
            return
        if type_ in TERMINAL_EVENT_TYPES:
            self._signal_stop(AttemptStopped(f"job ended elsewhere ({type_})", ack=True))
        elif isinstance(event, JobStarted) and event.attempt > self.number:
            self._signal_stop(
                AttemptStopped(f"attempt {event.attempt} started on {event.runner_id}", ack=False)
            )

    def _on_started(self, task: asyncio.Task[int]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, WorkSuperseded):
            self._signal_stop(AttemptStopped(f"not started: {exc}", ack=True))
        elif exc is not None:
            self._signal_stop(AttemptStopped(f"could not record the start: {exc}", ack=False))

    def _on_flush_failed(self, exc: BaseException) -> None:
        if isinstance(exc, ConcurrencyConflict):
            self._signal_stop(
                AttemptStopped("a newer attempt owns the job (log publish conflict)", ack=False)
            )
        else:
            self._signal_stop(AttemptStopped(f"could not record logs: {exc}", ack=False))

    # -- publishing --------------------------------------------------------------------------

    async def _publish(self, event: Event, event_id: str) -> None:
        self.begin()  # a job that never got under way still gets its JobStarted
        async with self._publish_lock:
            if self._seq is None:
                assert self._started is not None
                self._seq = await self._started
            for _ in range(PASSING_FACTS_RETRIES):
                try:
                    self._seq = await self.events.append(
                        event, job=self.job, event_id=event_id, expected_seq=self._seq
                    )
                    return
                except ConcurrencyConflict:
                    # Billing records a job's costs on its subject while it runs: those
                    # leave the job to this attempt. Anything else (a newer attempt, an
                    # end recorded elsewhere) means the job moved on.
                    newer = await self.events.since(self.job, self._seq)
                    if not newer or any(e.type not in PASSING_FACTS for e in newer):
                        raise
                    self._seq = newer[-1].seq
            raise ConcurrencyConflict(f"{self.job.job_id}: other writers kept appending")

    async def _publish_logs(self, batches: list[LogBatch], *, final: bool) -> None:
        truncated = final and self._flusher.collector.truncated
        for event in log_events(batches, truncated=truncated):
            self._log_n += 1
            await self._publish(event, job_log_id(self.job.job_id, self.number, self._log_n))
