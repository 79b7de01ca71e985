"""In-memory implementations of the scheduler's ports (``puras_scheduler.app.ports``),
held to the NATS adapters' behaviour by ``tests/integration/scheduler/test_scheduler_ports.py``."""

from __future__ import annotations

import asyncio

from fake_event_log import FakeEventLog

from puras_common.bus.client import Published
from puras_common.events.base import Event
from puras_common.events.commands import RunJob, SubmitJob
from puras_common.events.ids import work_again_msg_id, work_msg_id
from puras_common.events.recorded import RecordedEvent
from puras_common.events.subjects import (
    AGG_DEPLOYMENTS,
    AGG_JOB,
    AGG_LEDGER,
    event_aggregate,
    event_subject,
)
from puras_common.events.types import JobRecord
from puras_common.views.deployments import DeploymentsView
from puras_common.views.jobs import apply_job_event
from puras_common.views.ledger import BalancesView
from puras_scheduler.app.ports import MoveFn, OnCredit

__all__ = [
    "FakeDeadWork",
    "FakeHeldJobs",
    "FakeJobLog",
    "FakePendingSubmits",
    "FakeSchedulerViews",
    "FakeWorkQueue",
]


class FakeJobLog:
    def __init__(self, log: FakeEventLog) -> None:
        self.log = log

    async def append(
        self,
        event: Event,
        *,
        project_id: str,
        job_id: str,
        event_id: str,
        expected_last_seq: int | None = None,
    ) -> Published:
        return self.log.append(
            event,
            project_id=project_id,
            aggregate=AGG_JOB,
            aggregate_id=job_id,
            event_id=event_id,
            expected_last_seq=expected_last_seq,
            correlation_id=job_id,
        )

    async def last_seq(self, project_id: str, job_id: str) -> int:
        return self.log.last_seq(event_subject(project_id, AGG_JOB, job_id))

    async def read(self, project_id: str, job_id: str) -> tuple[JobRecord | None, int]:
        job: JobRecord | None = None
        last = 0
        for rec in self.log.on_subject(event_subject(project_id, AGG_JOB, job_id)):
            job = apply_job_event(job, rec.envelope, rec.event)
            last = rec.seq
        return job, last


class FakePendingSubmits:
    """Submits the test put in the queue (``queue``) and has not marked admitted."""

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], SubmitJob] = {}

    def queue(self, cmd: SubmitJob) -> None:
        self._waiting[(cmd.project_id, cmd.job_id)] = cmd

    def acked(self, cmd: SubmitJob) -> None:
        self._waiting.pop((cmd.project_id, cmd.job_id), None)

    async def get(self, project_id: str, job_id: str) -> SubmitJob | None:
        return self._waiting.get((project_id, job_id))


class FakeWorkQueue:
    def __init__(self) -> None:
        self.items: list[RunJob] = []
        self._ids: set[str] = set()
        """Message ids stored (the stream's duplicate window, which outlasts a test)."""
        self.arrived = asyncio.Event()
        """Set at each dispatch (clear it to wait for the next)."""

    async def dispatch(self, work: RunJob, *, again: bool = False) -> None:
        msg_id = work_again_msg_id(work.job_id) if again else work_msg_id(work.job_id)
        if msg_id in self._ids:
            return
        self._ids.add(msg_id)
        self.items.append(work)
        self.arrived.set()


class FakeDeadWork:
    def __init__(self) -> None:
        self.items: dict[int, RunJob] = {}
        """Dead work items by stream sequence (a test puts them here)."""

    async def get(self, stream_seq: int) -> RunJob | None:
        return self.items.get(stream_seq)

    async def remove(self, stream_seq: int) -> None:
        self.items.pop(stream_seq, None)


class FakeHeldJobs:
    def __init__(self) -> None:
        self._held: dict[str, dict[str, RunJob]] = {}
        self._ids: set[str] = set()
        self._releasing: set[str] = set()

    async def hold(self, work: RunJob) -> None:
        if work.job_id in self._ids:
            return
        self._ids.add(work.job_id)
        self._held.setdefault(work.project_id, {})[work.job_id] = work

    async def projects(self) -> set[str]:
        return {p for p, jobs in self._held.items() if jobs}

    async def release_all(self, project_id: str, move: MoveFn) -> int:
        if project_id in self._releasing:
            return 0
        self._releasing.add(project_id)
        moved = 0
        try:
            jobs = self._held.get(project_id, {})
            while jobs:
                job_id, work = next(iter(jobs.items()))
                await move(work)
                del jobs[job_id]
                moved += 1
        finally:
            self._releasing.discard(project_id)
        return moved


class FakeSchedulerViews:
    """Follows a :class:`FakeEventLog`: what is appended to it is applied at once."""

    def __init__(self, log: FakeEventLog) -> None:
        self.deployments = DeploymentsView()
        self.balances = BalancesView()
        self.ready = asyncio.Event()
        self.last_seq = 0
        self._log = log
        self._on_credit: OnCredit | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    async def start(self, on_credit: OnCredit) -> None:
        self._on_credit = on_credit
        for rec in self._log.records():
            self._apply(rec)
        self.ready.set()
        self._log.follow(self._apply)

    async def stop(self) -> None:
        self._on_credit = None

    def _apply(self, rec: RecordedEvent) -> None:
        aggregate = event_aggregate(rec.subject)
        if aggregate == AGG_DEPLOYMENTS:
            self.deployments.apply(rec)
        elif aggregate == AGG_LEDGER:
            change = self.balances.apply(rec)
            if (
                change is not None
                and change[0] <= 0 < change[1]
                and self.ready.is_set()
                and self._on_credit is not None
            ):
                self._on_credit(rec.envelope.project_id)
        else:
            return
        self.last_seq = rec.seq
        for seq, fut in self._waiters:
            if seq <= rec.seq and not fut.done():
                fut.set_result(None)
        self._waiters = [(s, f) for s, f in self._waiters if not f.done()]

    async def wait_for(self, seq: int, timeout: float) -> bool:
        if self.last_seq >= seq:
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return False
        return True
