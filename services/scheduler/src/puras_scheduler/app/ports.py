"""What the scheduler's handlers need from the world, as protocols.

The adapters implement them over NATS (``puras_scheduler.adapters``); the unit tests
implement them in memory, and one contract suite holds both to the same behaviour.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from puras_common.bus.client import Published
from puras_common.events.base import Event
from puras_common.events.commands import RunJob, SubmitJob
from puras_common.events.types import JobRecord
from puras_common.views.deployments import DeploymentsView
from puras_common.views.ledger import BalancesView

__all__ = [
    "DeadWork",
    "HeldJobs",
    "JobLog",
    "MoveFn",
    "OnCredit",
    "PendingSubmits",
    "SchedulerViews",
    "WorkQueue",
]

MoveFn = Callable[[RunJob], Awaitable[None]]
"""Takes one held job out of the held queue (it is acked once this returns)."""

OnCredit = Callable[[str], None]
"""``on_credit(project_id)``: the project's balance went from zero or less to above."""


class JobLog(Protocol):
    """The job subjects of the event log, ``ev.<project>.job.<job>``."""

    async def append(
        self,
        event: Event,
        *,
        project_id: str,
        job_id: str,
        event_id: str,
        expected_last_seq: int | None = None,
    ) -> Published:
        """Store ``event`` on the job's subject.

        An ``event_id`` stored before (within the log's duplicate window) is not stored
        again: the result is ``duplicate`` with the first one's sequence, whatever
        ``expected_last_seq`` says. Otherwise, with ``expected_last_seq`` given and the
        subject's last sequence another, it raises
        :class:`~puras_common.bus.ConcurrencyConflict` and stores nothing.
        """
        ...

    async def last_seq(self, project_id: str, job_id: str) -> int:
        """Sequence of the job's last event (0 when it has none)."""
        ...

    async def read(self, project_id: str, job_id: str) -> tuple[JobRecord | None, int]:
        """The job folded from its events, and the sequence of its last one."""
        ...


class PendingSubmits(Protocol):
    """Submits the API accepted that no scheduler has admitted yet (``PURAS_CMDS``)."""

    async def get(self, project_id: str, job_id: str) -> SubmitJob | None:
        """The job's submit while it waits in the queue; ``None`` once it was acked (the
        job is admitted: its events are in the log) or when there never was one."""
        ...


class WorkQueue(Protocol):
    """Where runnable jobs wait for a runner of the pool (``work.<pool>``)."""

    async def dispatch(self, work: RunJob, *, again: bool = False) -> None:
        """Queue the job once: dispatching the same job again within the queue's
        duplicate window queues nothing more. ``again``: the item of a redelivered
        submit, deduplicated apart from the first one."""
        ...


class DeadWork(Protocol):
    """Work items JetStream gave up delivering (their stream sequence names them)."""

    async def get(self, stream_seq: int) -> RunJob | None:
        """The item, or ``None`` when it is gone (acked, or removed already)."""
        ...

    async def remove(self, stream_seq: int) -> None:
        """Drop the item (removing one that is gone changes nothing)."""
        ...


class HeldJobs(Protocol):
    """Jobs admitted while their project had no credit (J7)."""

    async def hold(self, work: RunJob) -> None:
        """Keep the job until its project is released (holding it twice keeps one)."""
        ...

    async def projects(self) -> set[str]:
        """Projects with at least one held job."""
        ...

    async def release_all(self, project_id: str, move: MoveFn) -> int:
        """Hand each held job of the project to ``move``, in the order held, removing each
        once ``move`` returned; returns how many. A job whose ``move`` raised stays held
        (the error propagates). While one release of a project runs, another of the same
        project returns 0 at once: the first one is doing the work."""
        ...


class SchedulerViews(Protocol):
    """Deployments and credit balances, kept current from the log."""

    @property
    def deployments(self) -> DeploymentsView: ...

    @property
    def balances(self) -> BalancesView: ...

    @property
    def ready(self) -> asyncio.Event:
        """Set once the views hold what the log held at start."""
        ...

    @property
    def last_seq(self) -> int:
        """Everything up to this log sequence is applied."""
        ...

    async def start(self, on_credit: OnCredit) -> None:
        """Follow the log; once ready, call ``on_credit`` for each project whose balance
        rises above zero."""
        ...

    async def stop(self) -> None: ...

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait (bounded) until the views applied ``seq``; false on timeout."""
        ...
