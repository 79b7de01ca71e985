"""The scheduler's ports: one suite, run against the in-memory fakes the unit tests use
(``tests/scheduler_fakes.py``) and the NATS adapters on a real nats-server, so that the
fakes cannot drift from what production does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from fake_event_log import FakeEventLog
from scheduler_fakes import (
    FakeDeadWork,
    FakeHeldJobs,
    FakeJobLog,
    FakePendingSubmits,
    FakeSchedulerViews,
    FakeWorkQueue,
)

from puras_common.bus import Bus, ConcurrencyConflict, Published, connect, ensure_streams
from puras_common.events.commands import RunJob, SubmitJob, encode_command
from puras_common.events.subjects import (
    AGG_DEPLOYMENTS,
    AGG_JOB,
    AGG_LEDGER,
    CMDS_STREAM,
    WORK_STREAM,
    submit_subject,
    work_subject,
)
from puras_common.events.types import (
    BundleRef,
    CreditGranted,
    DeploymentActivated,
    DeploymentCreated,
    JobQueued,
    JobStarted,
    SkillRecord,
)
from puras_common.ids import new_id
from puras_scheduler.adapters.dead_work import NatsDeadWork
from puras_scheduler.adapters.held import NatsHeldJobs
from puras_scheduler.adapters.job_log import NatsJobLog
from puras_scheduler.adapters.state import SchedulerState
from puras_scheduler.adapters.submits import NatsPendingSubmits
from puras_scheduler.adapters.work import NatsWorkQueue
from puras_scheduler.app.ports import (
    DeadWork,
    HeldJobs,
    JobLog,
    PendingSubmits,
    SchedulerViews,
    WorkQueue,
)

pytestmark = pytest.mark.integration

POOL = "contract"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
WAIT_S = 10.0
"""Bound on anything the real adapters do asynchronously (it takes milliseconds)."""

Append = Callable[..., Awaitable[Published]]


@dataclass
class World:
    """The ports of one implementation, and how a test writes to and reads from the world
    behind them (the log, the work queue) without going through the port under test."""

    jobs: JobLog
    work: WorkQueue
    held: HeldJobs
    views: SchedulerViews
    append: Append
    """``append(event, project_id=, aggregate=, aggregate_id=, event_id=)`` to the log."""
    dispatched: Callable[[int], Awaitable[list[RunJob]]]
    """The next ``n`` work items queued for the pool."""
    dead: DeadWork
    bury: Callable[[RunJob], Awaitable[int]]
    """Leave a work item that no runner will take; returns its stream sequence."""
    submits: PendingSubmits
    accept: Callable[[SubmitJob], Awaitable[Callable[[], Awaitable[None]]]]
    """Queue a submit as the gateway does; returns how to ack it as the scheduler does."""


@pytest.fixture(params=["fake", "nats"])
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    if request.param == "fake":
        log = FakeEventLog()
        work = FakeWorkQueue()
        taken = 0

        async def append_fake(event: Any, **kw: Any) -> Published:
            return log.append(event, **kw)

        async def dispatched_fake(n: int) -> list[RunJob]:
            nonlocal taken
            out, taken = work.items[taken : taken + n], taken + n
            return out

        dead = FakeDeadWork()

        async def bury_fake(item: RunJob) -> int:
            seq = max(dead.items, default=0) + 1
            dead.items[seq] = item
            return seq

        submits = FakePendingSubmits()

        async def accept_fake(cmd: SubmitJob) -> Callable[[], Awaitable[None]]:
            submits.queue(cmd)

            async def ack() -> None:
                submits.acked(cmd)

            return ack

        views = FakeSchedulerViews(log)
        yield World(
            FakeJobLog(log),
            work,
            FakeHeldJobs(),
            views,
            append_fake,
            dispatched_fake,
            dead,
            bury_fake,
            submits,
            accept_fake,
        )
        await views.stop()
        return
    server = request.getfixturevalue("nats_server")
    bus: Bus = await connect(server.url, name="scheduler-contract")
    await ensure_streams(bus.js)
    pull = await bus.js.pull_subscribe(work_subject(POOL), "contract-reader", stream=WORK_STREAM)

    async def append_nats(event: Any, **kw: Any) -> Published:
        return await bus.append(event, **kw)

    async def dispatched_nats(n: int) -> list[RunJob]:
        out: list[RunJob] = []
        while len(out) < n:
            for m in await pull.fetch(n - len(out), timeout=WAIT_S):
                out.append(msgspec.json.decode(m.data, type=RunJob))
                await m.ack()
        return out

    async def bury_nats(item: RunJob) -> int:
        pub = await bus.publish_raw("work.nobody", msgspec.json.encode(item), stream=WORK_STREAM)
        return pub.seq

    async def accept_nats(cmd: SubmitJob) -> Callable[[], Awaitable[None]]:
        subject = submit_subject(cmd.project_id, cmd.job_id)
        pub = await bus.publish_raw(subject, encode_command(cmd), stream=CMDS_STREAM)

        async def ack() -> None:
            await bus.js.delete_msg(CMDS_STREAM, pub.seq)

        return ack

    state = SchedulerState(bus)
    try:
        yield World(
            NatsJobLog(bus),
            NatsWorkQueue(bus, POOL),
            NatsHeldJobs(bus),
            state,
            append_nats,
            dispatched_nats,
            NatsDeadWork(bus),
            bury_nats,
            NatsPendingSubmits(bus),
            accept_nats,
        )
    finally:
        await state.stop()
        await bus.close()


def _work(project_id: str, job_id: str | None = None) -> RunJob:
    return RunJob(
        job_id=job_id or new_id(),
        project_id=project_id,
        skill="echo",
        inputs={"text": "hi"},
        deployment_id="d1",
        created_at=T0,
        bundle_key="k",
        bundle_sha256="h",
    )


def _queued() -> JobQueued:
    return JobQueued(skill="echo", inputs={"text": "hi"}, deployment_id="d1", created_at=T0)


def _started() -> JobStarted:
    return JobStarted(attempt=1, deployment_id="d1", runner_id="r1", started_at=T0)


# -- submits not admitted yet -----------------------------------------------------------


async def test_a_submit_is_pending_until_it_is_acked(world: World) -> None:
    project = new_id()
    cmd = SubmitJob(
        job_id=new_id(), project_id=project, skill="echo", inputs={"text": "hi"}, submitted_at=T0
    )
    assert await world.submits.get(project, cmd.job_id) is None
    ack = await world.accept(cmd)
    assert await world.submits.get(project, cmd.job_id) == cmd
    # Looked up by project and job: another project's id finds nothing.
    assert await world.submits.get(new_id(), cmd.job_id) is None
    await ack()
    assert await world.submits.get(project, cmd.job_id) is None


# -- the job log ------------------------------------------------------------------------


async def test_an_appended_job_event_is_read_back_with_its_sequence(world: World) -> None:
    p, j = new_id(), new_id()
    assert await world.jobs.read(p, j) == (None, 0)
    assert await world.jobs.last_seq(p, j) == 0
    pub = await world.jobs.append(_queued(), project_id=p, job_id=j, event_id=f"{j}:queued")
    assert not pub.duplicate
    job, last = await world.jobs.read(p, j)
    assert job is not None
    assert (job.id, job.project_id, job.status) == (j, p, "queued")
    assert last == pub.seq == await world.jobs.last_seq(p, j)


async def test_a_stale_expected_sequence_is_refused_and_stores_nothing(world: World) -> None:
    p, j = new_id(), new_id()
    first = await world.jobs.append(_queued(), project_id=p, job_id=j, event_id=f"{j}:queued")
    with pytest.raises(ConcurrencyConflict):
        await world.jobs.append(
            _started(), project_id=p, job_id=j, event_id=f"{j}:s", expected_last_seq=first.seq - 1
        )
    job, last = await world.jobs.read(p, j)
    assert job is not None
    assert job.status == "queued"
    assert last == first.seq
    ok = await world.jobs.append(
        _started(), project_id=p, job_id=j, event_id=f"{j}:s", expected_last_seq=first.seq
    )
    assert ok.seq > first.seq


async def test_a_repeated_event_id_is_stored_once(world: World) -> None:
    p, j = new_id(), new_id()
    first = await world.jobs.append(_queued(), project_id=p, job_id=j, event_id=f"{j}:queued")
    later = await world.jobs.append(_started(), project_id=p, job_id=j, event_id=f"{j}:s")
    again = await world.jobs.append(_queued(), project_id=p, job_id=j, event_id=f"{j}:queued")
    assert again.duplicate
    assert again.seq == first.seq
    assert await world.jobs.last_seq(p, j) == later.seq


async def test_the_expected_sequence_is_checked_before_the_event_id(world: World) -> None:
    # A guarded append retried once the subject moved on (by its own first attempt
    # too) is a conflict, not a duplicate: the writer must read again to find out.
    p, j = new_id(), new_id()
    first = await world.jobs.append(
        _queued(), project_id=p, job_id=j, event_id=f"{j}:queued", expected_last_seq=0
    )
    with pytest.raises(ConcurrencyConflict):
        await world.jobs.append(
            _queued(), project_id=p, job_id=j, event_id=f"{j}:queued", expected_last_seq=0
        )
    again = await world.jobs.append(
        _queued(), project_id=p, job_id=j, event_id=f"{j}:queued", expected_last_seq=first.seq
    )
    assert again.duplicate
    assert again.seq == first.seq


# -- the work queue -----------------------------------------------------------------------


async def test_a_job_dispatched_twice_is_queued_once(world: World) -> None:
    p = new_id()
    a, b = _work(p), _work(p)
    await world.work.dispatch(a)
    await world.work.dispatch(a)
    await world.work.dispatch(b)
    assert [w.job_id for w in await world.dispatched(2)] == [a.job_id, b.job_id]


# -- dead work ----------------------------------------------------------------------------


async def test_a_dead_work_item_is_read_then_removed(world: World) -> None:
    item = _work(new_id())
    seq = await world.bury(item)
    assert await world.dead.get(seq) == item
    await world.dead.remove(seq)
    assert await world.dead.get(seq) is None
    await world.dead.remove(seq)  # gone already: nothing happens
    assert await world.dead.get(seq + 1000) is None


# -- held jobs ----------------------------------------------------------------------------


async def test_held_jobs_are_listed_by_project_and_released_in_order(world: World) -> None:
    p, q = new_id(), new_id()
    first, second, other = _work(p), _work(p), _work(q)
    for w in (first, second, other):
        await world.held.hold(w)
    assert {p, q} <= await world.held.projects()
    moved: list[RunJob] = []

    async def move(work: RunJob) -> None:
        moved.append(work)

    assert await world.held.release_all(p, move) == 2
    assert moved == [first, second]
    remaining = await world.held.projects()
    assert p not in remaining
    assert q in remaining
    assert await world.held.release_all(p, move) == 0


async def test_a_job_held_twice_is_released_once(world: World) -> None:
    p = new_id()
    w = _work(p)
    await world.held.hold(w)
    await world.held.hold(w)
    moved: list[RunJob] = []

    async def move(work: RunJob) -> None:
        moved.append(work)

    assert await world.held.release_all(p, move) == 1
    assert moved == [w]


async def test_a_job_whose_move_failed_stays_held(world: World) -> None:
    p = new_id()
    w = _work(p)
    await world.held.hold(w)

    async def broken(work: RunJob) -> None:
        raise RuntimeError("the work queue is down")

    with pytest.raises(RuntimeError, match="down"):
        await world.held.release_all(p, broken)
    assert p in await world.held.projects()
    moved: list[RunJob] = []

    async def move(work: RunJob) -> None:
        moved.append(work)

    assert await world.held.release_all(p, move) == 1
    assert moved == [w]


async def test_a_release_of_a_project_being_released_returns_at_once(world: World) -> None:
    p = new_id()
    await world.held.hold(_work(p))
    nested: list[int] = []

    async def move(work: RunJob) -> None:
        # Another replica (or task) releasing the same project meanwhile does nothing.
        nested.append(await world.held.release_all(p, move))

    assert await world.held.release_all(p, move) == 1
    assert nested == [0]


# -- the views ----------------------------------------------------------------------------


def _deployment(deployment_id: str) -> DeploymentCreated:
    return DeploymentCreated(
        deployment_id=deployment_id,
        notes="",
        bundle=BundleRef(key="k", sha256="h", size=1),
        requirements_sha256=None,
        skills=[SkillRecord(name="echo", kind="deterministic", entrypoint="main.py:run")],
    )


async def test_the_views_replay_the_log_then_follow_it(world: World) -> None:
    p, d = new_id(), new_id()
    await world.append(
        _deployment(d),
        project_id=p,
        aggregate=AGG_DEPLOYMENTS,
        aggregate_id=p,
        event_id=f"{d}:created",
    )
    before = await world.append(
        CreditGranted(grant_id="g1", micros=5),
        project_id=p,
        aggregate=AGG_LEDGER,
        aggregate_id=p,
        event_id="grant:g1",
    )
    credited: list[str] = []
    await world.views.start(on_credit=credited.append)
    await asyncio.wait_for(world.views.ready.wait(), WAIT_S)
    assert world.views.last_seq >= before.seq
    assert world.views.balances.balance(p) == 5
    assert d in world.views.deployments.project(p).deployments
    after = await world.append(
        DeploymentActivated(deployment_id=d),
        project_id=p,
        aggregate=AGG_DEPLOYMENTS,
        aggregate_id=p,
        event_id=f"{d}:activated",
    )
    assert await world.views.wait_for(after.seq, WAIT_S)
    active = world.views.deployments.project(p).active
    assert active is not None
    assert active.id == d
    # Credit that was there before the views were ready releases nothing by itself
    # (the scheduler releases funded projects once, at start).
    assert credited == []


async def test_credit_rising_above_zero_is_reported_once(world: World) -> None:
    p = new_id()
    credited: list[str] = []
    await world.views.start(on_credit=credited.append)
    await asyncio.wait_for(world.views.ready.wait(), WAIT_S)
    for i in (1, 2):
        pub = await world.append(
            CreditGranted(grant_id=f"g{i}", micros=5),
            project_id=p,
            aggregate=AGG_LEDGER,
            aggregate_id=p,
            event_id=f"grant:{p}:{i}",
        )
        assert await world.views.wait_for(pub.seq, WAIT_S)
    assert credited == [p]
    assert world.views.balances.balance(p) == 10


async def test_waiting_for_a_sequence_not_written_times_out(world: World) -> None:
    await world.views.start(on_credit=lambda _p: None)
    await asyncio.wait_for(world.views.ready.wait(), WAIT_S)
    p, j = new_id(), new_id()
    # An event on a subject the views do not follow moves the log, not the views.
    pub = await world.append(
        _queued(), project_id=p, aggregate=AGG_JOB, aggregate_id=j, event_id=f"{j}:queued"
    )
    assert not await world.views.wait_for(pub.seq, 0.2)
