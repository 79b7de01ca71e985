"""The scheduler's handlers: admit submitted jobs, release held ones.

Every step is safe to repeat: events and work items carry deterministic message ids, so
a command redelivered after a crash (before its ack) produces no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
import structlog
from nats.aio.msg import Msg

from puras_common.bus import Bus, ConcurrencyConflict
from puras_common.clock import Clock
from puras_common.events.commands import (
    CancelJob,
    Command,
    RunJob,
    SubmitJob,
    decode_command,
)
from puras_common.events.subjects import AGG_JOB, WORK_STREAM, event_subject, work_subject
from puras_common.events.types import JobReleased
from puras_common.logging import get_logger
from puras_common.telemetry import extract_context, tracer
from puras_scheduler.adapters.held import HeldJobs
from puras_scheduler.adapters.job_state import read_job
from puras_scheduler.adapters.state import SchedulerState
from puras_scheduler.domain.admission import admit, terminal_event_id, work_msg_id
from puras_scheduler.domain.cancel import cancelled_event

__all__ = ["Scheduler"]

log = get_logger(__name__)
_enc = msgspec.json.Encoder()
_run_decoder = msgspec.json.Decoder(RunJob)


class Scheduler:
    def __init__(
        self,
        *,
        bus: Bus,
        state: SchedulerState,
        held: HeldJobs,
        clock: Clock,
        pool: str,
        view_wait_s: float,
    ) -> None:
        self._bus = bus
        self._state = state
        self._held = held
        self._clock = clock
        self._work_subject = work_subject(pool)
        self._view_wait = view_wait_s
        self._release_locks: dict[str, asyncio.Lock] = {}
        self._bg: set[asyncio.Task[int]] = set()
        self._tracer = tracer("puras.scheduler")

    async def handle(self, msg: Msg) -> None:
        """Handle one command message; ack it only once its effects are stored."""
        try:
            cmd: Command = decode_command(msg.data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # A command we cannot read will never become readable: say so loudly and drop
            # it from the queue instead of redelivering it forever.
            log.error("undecodable command dropped", error=str(exc), subject=msg.subject)
            await msg.term()
            return
        with (
            structlog.contextvars.bound_contextvars(project_id=cmd.project_id, job_id=cmd.job_id),
            self._tracer.start_as_current_span(
                "scheduler.command", context=extract_context(msg.headers)
            ),
        ):
            if isinstance(cmd, SubmitJob):
                await self.submit(cmd)
            elif isinstance(cmd, CancelJob):
                await self.cancel(cmd)
        await msg.ack()

    async def submit(self, cmd: SubmitJob) -> None:
        if cmd.idempotency_key is not None and await self._bus.last_subject_seq(
            event_subject(cmd.project_id, AGG_JOB, cmd.job_id)
        ):
            # A repeat of an idempotent submit whose first command was admitted already
            # (a gateway re-submitted after waiting): one job per key, whatever the timing.
            log.info("idempotent submit already admitted", job_id=cmd.job_id)
            return
        # Read-your-writes: the gateway validated against a view at least this recent.
        if cmd.after_seq and not await self._state.wait_for(cmd.after_seq, self._view_wait):
            log.warning(
                "deployments view behind the gateway's; admitting with what we have",
                job_id=cmd.job_id,
                want=cmd.after_seq,
                have=self._state.last_seq,
            )
        decision = admit(
            cmd,
            self._state.deployments.project(cmd.project_id),
            self._state.balances.balance(cmd.project_id),
            self._clock.now(),
        )
        # Events of one job are appended in order: job.queued must be stored before the
        # runner can see the work item, or a fast runner's job.started could precede it.
        last_seq = 0
        for event, event_id in decision.events:
            pub = await self._bus.append(
                event,
                project_id=cmd.project_id,
                aggregate=AGG_JOB,
                aggregate_id=cmd.job_id,
                event_id=event_id,
                correlation_id=cmd.job_id,
            )
            last_seq = pub.seq
        if decision.work is None:
            log.info("job failed admission", job_id=cmd.job_id, project_id=cmd.project_id)
            return
        work = msgspec.structs.replace(decision.work, queued_seq=last_seq)
        payload = _enc.encode(work)
        if decision.outcome == "dispatch":
            await self._dispatch(work.job_id, payload)
        else:
            await self._held.hold(work, payload)
            log.info("job held: no credit", job_id=cmd.job_id, project_id=cmd.project_id)
            # Credit may have arrived between the balance read and the hold.
            if self._state.balances.balance(cmd.project_id) > 0:
                self.release_soon(cmd.project_id)

    async def cancel(self, cmd: CancelJob) -> None:
        """Append ``job.cancelled`` unless the job already ended (J6).

        Guarded by the job's last sequence: if a runner appended meanwhile (its start, a
        log line), read again and decide again.
        """
        for _ in range(20):
            job, last_seq = await read_job(self._bus, cmd.project_id, cmd.job_id)
            event = cancelled_event(job, self._clock.now())
            if event is None:
                return
            try:
                await self._bus.append(
                    event,
                    project_id=cmd.project_id,
                    aggregate=AGG_JOB,
                    aggregate_id=cmd.job_id,
                    event_id=terminal_event_id(cmd.job_id),
                    correlation_id=cmd.job_id,
                    expected_last_subject_seq=last_seq,
                )
            except ConcurrencyConflict:
                continue
            log.info("job cancelled", job_id=cmd.job_id, was=job.status if job else None)
            return
        raise RuntimeError(f"job {cmd.job_id} kept changing; cancel will be redelivered")

    async def _dispatch(self, job_id: str, payload: bytes) -> None:
        await self._bus.publish_raw(
            self._work_subject, payload, msg_id=work_msg_id(job_id), stream=WORK_STREAM
        )

    def release_soon(self, project_id: str) -> None:
        task = asyncio.get_running_loop().create_task(self.release(project_id))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def release(self, project_id: str) -> int:
        """Dispatch every job of the project that waits for credit (J7)."""
        lock = self._release_locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            if self._state.balances.balance(project_id) <= 0:
                return 0

            async def move(payload: bytes) -> None:
                work = _run_decoder.decode(payload)
                try:
                    pub = await self._bus.append(
                        JobReleased(),
                        project_id=work.project_id,
                        aggregate=AGG_JOB,
                        aggregate_id=work.job_id,
                        event_id=f"{work.job_id}:released",
                        correlation_id=work.job_id,
                        expected_last_subject_seq=work.queued_seq or None,
                    )
                except ConcurrencyConflict:
                    # Something happened to the job while it waited: it was cancelled.
                    log.info("held job no longer waiting; not dispatched", job_id=work.job_id)
                    return
                if pub.duplicate:
                    # Released before by a scheduler that died before acking the held
                    # item: dispatch again (deduplicated) with the original sequence.
                    seq = await self._bus.last_subject_seq(
                        event_subject(work.project_id, AGG_JOB, work.job_id)
                    )
                    if seq != pub.seq:
                        return
                released = msgspec.structs.replace(work, queued_seq=pub.seq)
                await self._dispatch(work.job_id, _enc.encode(released))

            n = await self._held.release_all(project_id, move)
            if n:
                log.info("released held jobs", project_id=project_id, count=n)
            return n

    async def release_all_funded(self) -> None:
        """At start: release held jobs of every project that has credit now."""
        for pid in await self._held.projects_with_held_jobs():
            if self._state.balances.balance(pid) > 0:
                await self.release(pid)

    async def drain(self) -> None:
        """Wait for background releases started by credit arriving."""
        for t in list(self._bg):
            with contextlib.suppress(Exception):
                await t
