"""The scheduler's handlers: admit submitted jobs, cancel jobs, release held ones.

Every step is safe to repeat: events and work items carry deterministic message ids, so
a command redelivered after a crash (before its ack) produces no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

import msgspec

from puras_common.bus.client import ConcurrencyConflict
from puras_common.clock import Clock
from puras_common.events.commands import CancelJob, RunJob, SubmitJob
from puras_common.events.ids import job_released_id, job_terminal_id
from puras_common.events.types import JobReleased
from puras_common.logging import get_logger
from puras_scheduler.app.ports import HeldJobs, JobLog, PendingSubmits, SchedulerViews, WorkQueue
from puras_scheduler.domain.admission import Admission, admit
from puras_scheduler.domain.cancel import cancelled_event

__all__ = ["CANCEL_ATTEMPTS", "NotAdmittedYet", "Scheduler"]

log = get_logger(__name__)

CANCEL_ATTEMPTS = 20
"""Reads and decisions a cancel makes while runners keep appending to the job."""


class NotAdmittedYet(Exception):
    """A cancel arrived for a job that has no events yet.

    The gateway sends a cancel only for a job it accepted, so its submit is still in the
    command queue (this scheduler was down, or another one is admitting it right now).
    The cancel must wait for the admission, not be dropped: the command loop hands it
    back to JetStream for a later delivery.
    """


class Scheduler:
    def __init__(
        self,
        *,
        jobs: JobLog,
        work: WorkQueue,
        held: HeldJobs,
        views: SchedulerViews,
        submits: PendingSubmits,
        clock: Clock,
        view_wait_s: float,
    ) -> None:
        self._jobs = jobs
        self._submits = submits
        self._work = work
        self._held = held
        self._views = views
        self._clock = clock
        self._view_wait = view_wait_s
        self._release_locks: dict[str, asyncio.Lock] = {}
        self._bg: set[asyncio.Task[int]] = set()

    async def submit(self, cmd: SubmitJob, *, redelivered: bool = False) -> None:
        """Admit a submitted job. ``redelivered``: this command was delivered before
        (its handler may have stored some of its effects, or none)."""
        if cmd.idempotency_key is not None and await self._jobs.last_seq(
            cmd.project_id, cmd.job_id
        ):
            # A repeat of an idempotent submit whose first command was admitted already
            # (a gateway re-submitted after waiting): one job per key, whatever the timing.
            log.info("idempotent submit already admitted", job_id=cmd.job_id)
            return
        decision = await self._decide(cmd)
        if decision.outcome == "dispatch" and not redelivered and len(decision.events) == 1:
            await self._queue_and_dispatch(cmd, decision)
            return
        admitted = await self._record(cmd, decision)
        if admitted is None:
            return
        work, outcome = admitted
        if outcome == "dispatch":
            # A redelivered submit's first work item may be gone (a runner drops one
            # whose job.queued never got stored): this one has an id of its own. Two
            # items of one job are harmless: one start wins, the other is dropped.
            await self._work.dispatch(work, again=redelivered)
            return
        await self._held.hold(work)
        log.info("job held: no credit", job_id=cmd.job_id, project_id=cmd.project_id)
        # Credit may have arrived between the balance read and the hold.
        if self._views.balances.balance(cmd.project_id) > 0:
            self.release_soon(cmd.project_id)

    async def _queue_and_dispatch(self, cmd: SubmitJob, decision: Admission) -> None:
        """job.queued and the work item published together, not one after the other's
        ack: the runner reads job.queued's sequence from the log (``queued_pending``)
        and never starts before it is stored. If one publish fails the command is not
        acked, and its redelivery takes the ordered path."""
        assert decision.work is not None
        ((event, event_id),) = decision.events
        work = msgspec.structs.replace(decision.work, queued_pending=True)
        await asyncio.gather(
            self._jobs.append(
                event, project_id=cmd.project_id, job_id=cmd.job_id, event_id=event_id
            ),
            self._work.dispatch(work),
        )

    async def _decide(self, cmd: SubmitJob) -> Admission:
        # Read-your-writes: the gateway validated against a view at least this recent.
        if cmd.after_seq and not await self._views.wait_for(cmd.after_seq, self._view_wait):
            log.warning(
                "deployments view behind the gateway's; admitting with what we have",
                job_id=cmd.job_id,
                want=cmd.after_seq,
                have=self._views.last_seq,
            )
        return admit(
            cmd,
            self._views.deployments.project(cmd.project_id),
            self._views.balances.balance(cmd.project_id),
            self._clock.now(),
        )

    async def _admit(self, cmd: SubmitJob) -> tuple[RunJob, Literal["dispatch", "hold"]] | None:
        """Decide and append the job's admission events, in order (a cancel that came
        ahead of its submit admits the job this way, without dispatching it)."""
        return await self._record(cmd, await self._decide(cmd))

    async def _record(
        self, cmd: SubmitJob, decision: Admission
    ) -> tuple[RunJob, Literal["dispatch", "hold"]] | None:
        """Append the admission events; the work item and what to do with it, or
        ``None`` when there is nothing more to do (it failed admission, or its log went on
        past job.queued: a redelivered submit, or one whose cancel came first)."""
        # Events of one job are appended in order, and job.queued is stored before the
        # work item is sent: its sequence goes in the item.
        last_seq = 0
        duplicate = False
        for event, event_id in decision.events:
            pub = await self._jobs.append(
                event, project_id=cmd.project_id, job_id=cmd.job_id, event_id=event_id
            )
            last_seq = pub.seq
            duplicate = pub.duplicate
        if decision.work is None or decision.outcome == "fail":
            log.info("job failed admission", job_id=cmd.job_id, project_id=cmd.project_id)
            return None
        if duplicate and await self._jobs.last_seq(cmd.project_id, cmd.job_id) != last_seq:
            # Admitted before, and the job went on since (dispatched, held and released,
            # or cancelled): whoever did that acted on it already.
            log.info("submit already acted on", job_id=cmd.job_id)
            return None
        return msgspec.structs.replace(decision.work, queued_seq=last_seq), decision.outcome

    async def cancel(self, cmd: CancelJob) -> None:
        """Append ``job.cancelled`` unless the job already ended (J6).

        Guarded by the job's last sequence: if a runner appended meanwhile (its start, a
        log line), read again and decide again.
        """
        for _ in range(CANCEL_ATTEMPTS):
            job, last_seq = await self._jobs.read(cmd.project_id, cmd.job_id)
            if job is None:
                # Accepted, not admitted yet (this scheduler was down, or the submit is
                # behind the cancel in the queue): admit it here, without dispatching it,
                # so the cancel lands on job.queued and the job never runs. The submit,
                # handled later, finds its job.queued stored and the job gone on.
                pending = await self._submits.get(cmd.project_id, cmd.job_id)
                if pending is None:
                    raise NotAdmittedYet(cmd.job_id)
                await self._admit(pending)
                continue
            event = cancelled_event(job, self._clock.now())
            if event is None:
                return
            try:
                await self._jobs.append(
                    event,
                    project_id=cmd.project_id,
                    job_id=cmd.job_id,
                    event_id=job_terminal_id(cmd.job_id),
                    expected_last_seq=last_seq,
                )
            except ConcurrencyConflict:
                continue
            log.info("job cancelled", job_id=cmd.job_id, was=job.status if job else None)
            return
        raise RuntimeError(f"job {cmd.job_id} kept changing; cancel will be redelivered")

    def release_soon(self, project_id: str) -> None:
        """Release the project's held jobs in the background (credit just arrived)."""
        task = asyncio.get_running_loop().create_task(self.release(project_id))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def release(self, project_id: str) -> int:
        """Dispatch every job of the project that waits for credit (J7)."""
        lock = self._release_locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            if self._views.balances.balance(project_id) <= 0:
                return 0
            n = await self._held.release_all(project_id, self._move)
            if n:
                log.info("released held jobs", project_id=project_id, count=n)
            return n

    async def _move(self, work: RunJob) -> None:
        try:
            pub = await self._jobs.append(
                JobReleased(),
                project_id=work.project_id,
                job_id=work.job_id,
                event_id=job_released_id(work.job_id),
                expected_last_seq=work.queued_seq or None,
            )
            seq = pub.seq
            if pub.duplicate and await self._jobs.last_seq(work.project_id, work.job_id) != seq:
                return  # (unguarded: a job queued before sequences were recorded)
        except ConcurrencyConflict:
            # The job's subject moved on while it waited. Only two things append to a
            # held job: a cancel (it ended), or an earlier release of it by a scheduler
            # that died before acking the held item (it is still queued, its release
            # the last event). The server checks the sequence before the event id, so
            # that release does not come back as a duplicate: read the job to tell.
            job, seq = await self._jobs.read(work.project_id, work.job_id)
            if job is None or job.status != "queued":
                log.info("held job no longer waiting; not dispatched", job_id=work.job_id)
                return
        # Dispatching twice is harmless: the work item's id deduplicates it, and a runner
        # starts the job only while ``seq`` is still its last event.
        await self._work.dispatch(msgspec.structs.replace(work, queued_seq=seq))

    async def release_all_funded(self) -> None:
        """At start: release held jobs of every project that has credit now."""
        for pid in await self._held.projects():
            if self._views.balances.balance(pid) > 0:
                await self.release(pid)

    async def drain(self) -> None:
        """Wait for background releases started by credit arriving."""
        for t in list(self._bg):
            with contextlib.suppress(Exception):
                await t
