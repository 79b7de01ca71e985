"""The scheduler's handlers, built by ``bootstrap.build`` on the in-memory ports (no NATS):
admission, holding for credit and releasing (J7), cancel (J6), and what a redelivered
command or a scheduler that died half-way leaves behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

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

from puras_common.bus.client import Published
from puras_common.events.base import Event
from puras_common.events.commands import CancelJob, RunJob, SubmitJob
from puras_common.events.ids import job_released_id
from puras_common.events.subjects import AGG_DEPLOYMENTS, AGG_JOB, AGG_LEDGER, event_subject
from puras_common.events.types import (
    BilledCall,
    BundleRef,
    CreditCharged,
    CreditGranted,
    DeploymentActivated,
    DeploymentCreated,
    JobLogged,
    JobReleased,
    JobStarted,
    SkillRecord,
)
from puras_common.ids import new_id
from puras_scheduler.app.handlers import NotAdmittedYet
from puras_scheduler.bootstrap import App, build
from puras_scheduler.settings import SchedulerSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WAIT_S = 5.0


class FixedClock:
    def now(self) -> datetime:
        return T0


@dataclass
class Rig:
    log: FakeEventLog
    jobs: FakeJobLog
    work: FakeWorkQueue
    held: FakeHeldJobs
    dead: FakeDeadWork
    submits: FakePendingSubmits
    app: App
    project: str

    def types(self, job_id: str) -> list[str]:
        subject = event_subject(self.project, AGG_JOB, job_id)
        return [r.envelope.type for r in self.log.on_subject(subject)]

    def grant(self, micros: int) -> None:
        self.log.append(
            CreditGranted(grant_id=new_id(), micros=micros),
            project_id=self.project,
            aggregate=AGG_LEDGER,
            aggregate_id=self.project,
            event_id=f"grant:{new_id()}",
        )

    def charge(self, micros: int) -> None:
        usage_id = new_id()
        call = BilledCall(
            usage_id=usage_id,
            job_id=new_id(),
            step=1,
            provider="anthropic",
            model="claude/sonnet-4-6",
            billed_micros=micros,
            registry_version="test",
            margin_pct=20,
        )
        self.log.append(
            CreditCharged(call=call),
            project_id=self.project,
            aggregate=AGG_LEDGER,
            aggregate_id=self.project,
            event_id=f"charge:{usage_id}",
        )

    def submit(self, job_id: str, **kw: object) -> SubmitJob:
        return SubmitJob(
            job_id=job_id,
            project_id=self.project,
            skill=str(kw.pop("skill", "echo")),
            inputs={"text": "hi"},
            submitted_at=T0,
            **kw,  # type: ignore[arg-type]
        )


def _work_of(cmd: SubmitJob) -> RunJob:
    return RunJob(
        job_id=cmd.job_id,
        project_id=cmd.project_id,
        skill=cmd.skill,
        inputs=cmd.inputs,
        deployment_id="d",
        created_at=cmd.submitted_at,
        bundle_key="k",
        bundle_sha256="h",
    )


def _deploy(log: FakeEventLog, project: str) -> None:
    d = new_id()
    log.append(
        DeploymentCreated(
            deployment_id=d,
            notes="",
            bundle=BundleRef(key="k", sha256="h", size=1),
            requirements_sha256=None,
            skills=[SkillRecord(name="echo", kind="deterministic", entrypoint="main.py:run")],
        ),
        project_id=project,
        aggregate=AGG_DEPLOYMENTS,
        aggregate_id=project,
        event_id=f"{d}:created",
    )
    log.append(
        DeploymentActivated(deployment_id=d),
        project_id=project,
        aggregate=AGG_DEPLOYMENTS,
        aggregate_id=project,
        event_id=f"{d}:activated",
    )


async def _rig(*, credit: int, jobs: FakeJobLog | None = None) -> Rig:
    log = jobs.log if jobs is not None else FakeEventLog()
    project = new_id()
    _deploy(log, project)
    rig = Rig(
        log=log,
        jobs=jobs or FakeJobLog(log),
        work=FakeWorkQueue(),
        held=FakeHeldJobs(),
        dead=FakeDeadWork(),
        submits=FakePendingSubmits(),
        app=None,  # type: ignore[arg-type]
        project=project,
    )
    if credit:
        rig.grant(credit)
    rig.app = build(
        SchedulerSettings(env="dev", view_wait_s=0.1),
        jobs=rig.jobs,
        work=rig.work,
        held=rig.held,
        dead=rig.dead,
        views=FakeSchedulerViews(log),
        submits=rig.submits,
        clock=FixedClock(),
    )
    await rig.app.start()
    return rig


@pytest.fixture
async def funded() -> AsyncIterator[Rig]:
    rig = await _rig(credit=1_000)
    yield rig
    await rig.app.stop()


@pytest.fixture
async def broke() -> AsyncIterator[Rig]:
    rig = await _rig(credit=0)
    yield rig
    await rig.app.stop()


async def test_a_funded_job_is_queued_and_dispatched_together(funded: Rig) -> None:
    # No round trip between them: the item says its job.queued was in flight, and the
    # runner reads that event's sequence from the log before it starts.
    await funded.app.scheduler.submit(funded.submit("j1"))
    assert funded.types("j1") == ["job.queued"]
    (work,) = funded.work.items
    assert work.job_id == "j1"
    assert (work.queued_pending, work.queued_seq) == (True, 0)


async def test_a_redelivered_submit_is_queued_then_dispatched_with_its_sequence(
    funded: Rig,
) -> None:
    # Its first delivery may have stored the work item and lost job.queued (a runner
    # then drops that item): job.queued goes first, and the new item has an id of its own.
    cmd = funded.submit("j1")
    first = FakeWorkQueue()
    await first.dispatch(msgspec.structs.replace(_work_of(cmd), queued_pending=True))
    funded.work._ids |= first._ids  # the stream deduplicates the first item's id
    await funded.app.scheduler.submit(cmd, redelivered=True)
    assert funded.types("j1") == ["job.queued"]
    (work,) = funded.work.items
    assert not work.queued_pending
    assert work.queued_seq == funded.jobs.log.last_seq(event_subject(funded.project, AGG_JOB, "j1"))


async def test_a_redelivered_submit_of_a_job_under_way_dispatches_nothing(funded: Rig) -> None:
    cmd = funded.submit("j1")
    await funded.app.scheduler.submit(cmd)
    await funded.jobs.append(
        JobStarted(attempt=1, deployment_id="d", runner_id="r", started_at=T0),
        project_id=funded.project,
        job_id="j1",
        event_id="j1:started:1",
    )
    await funded.app.scheduler.submit(cmd, redelivered=True)
    assert funded.types("j1") == ["job.queued", "job.started"]
    assert len(funded.work.items) == 1


async def test_an_unknown_skill_fails_admission_and_dispatches_nothing(funded: Rig) -> None:
    await funded.app.scheduler.submit(funded.submit("j1", skill="nope"))
    assert funded.types("j1") == ["job.queued", "job.failed"]
    assert funded.work.items == []


async def test_a_redelivered_idempotent_submit_admits_the_job_once(funded: Rig) -> None:
    cmd = funded.submit("j1", idempotency_key="k1")
    await funded.app.scheduler.submit(cmd)
    await funded.app.scheduler.submit(cmd)
    assert funded.types("j1") == ["job.queued"]
    assert len(funded.work.items) == 1


async def test_a_job_without_credit_is_held_until_credit_arrives(broke: Rig) -> None:
    await broke.app.scheduler.submit(broke.submit("j1"))
    assert broke.work.items == []
    assert await broke.held.projects() == {broke.project}
    broke.grant(500)  # the views see it, and the scheduler releases in the background
    await asyncio.wait_for(broke.work.arrived.wait(), WAIT_S)
    await broke.app.scheduler.drain()
    assert broke.types("j1") == ["job.queued", "job.released"]
    (work,) = broke.work.items
    assert work.queued_seq == broke.log.last_seq(event_subject(broke.project, AGG_JOB, "j1"))
    assert await broke.held.projects() == set()


async def test_charges_that_use_up_the_credit_hold_new_jobs_until_a_grant(funded: Rig) -> None:
    balances = funded.app.views.balances
    funded.charge(balances.balance(funded.project) + 1)  # B3: a job may go below zero
    async with asyncio.timeout(WAIT_S):
        while balances.balance(funded.project) > 0:
            await asyncio.sleep(0)  # the views follow the log in the background
    assert balances.balance(funded.project) == -1
    await funded.app.scheduler.submit(funded.submit("j1"))
    assert funded.work.items == []  # J7: claimed only while the balance is > 0
    assert await funded.held.projects() == {funded.project}
    funded.grant(500)
    await asyncio.wait_for(funded.work.arrived.wait(), WAIT_S)
    await funded.app.scheduler.drain()
    assert funded.types("j1") == ["job.queued", "job.released"]


async def test_held_jobs_of_a_project_funded_while_no_scheduler_ran_go_at_start() -> None:
    first = await _rig(credit=0)
    await first.app.scheduler.submit(first.submit("j1"))
    await first.app.stop()
    first.grant(500)  # nobody follows the log now
    again = build(
        SchedulerSettings(env="dev"),
        jobs=first.jobs,
        work=first.work,
        held=first.held,
        dead=first.dead,
        views=FakeSchedulerViews(first.log),
        submits=first.submits,
        clock=FixedClock(),
    )
    await again.start()
    assert [w.job_id for w in first.work.items] == ["j1"]
    await again.stop()


async def test_a_release_cut_short_by_a_crash_is_finished_by_the_next(broke: Rig) -> None:
    await broke.app.scheduler.submit(broke.submit("j1"))
    # A scheduler recorded the release and died before dispatching or acking the item.
    broke.log.append(
        JobReleased(),
        project_id=broke.project,
        aggregate=AGG_JOB,
        aggregate_id="j1",
        event_id=job_released_id("j1"),
    )
    broke.grant(500)
    await asyncio.wait_for(broke.work.arrived.wait(), WAIT_S)
    await broke.app.scheduler.drain()
    assert broke.types("j1") == ["job.queued", "job.released"]
    (work,) = broke.work.items
    assert work.queued_seq == broke.log.last_seq(event_subject(broke.project, AGG_JOB, "j1"))


async def test_a_held_job_cancelled_while_it_waited_is_not_dispatched(broke: Rig) -> None:
    await broke.app.scheduler.submit(broke.submit("j1"))
    await broke.app.scheduler.cancel(
        CancelJob(job_id="j1", project_id=broke.project, requested_at=T0)
    )
    broke.grant(500)
    await broke.app.scheduler.drain()
    assert await broke.app.scheduler.release(broke.project) == 0
    assert broke.types("j1") == ["job.queued", "job.cancelled"]
    assert broke.work.items == []
    assert await broke.held.projects() == set()


async def test_cancel_ends_a_queued_job_once(funded: Rig) -> None:
    await funded.app.scheduler.submit(funded.submit("j1"))
    cancel = CancelJob(job_id="j1", project_id=funded.project, requested_at=T0)
    await funded.app.scheduler.cancel(cancel)
    await funded.app.scheduler.cancel(cancel)
    assert funded.types("j1") == ["job.queued", "job.cancelled"]


class RacingRunner(FakeJobLog):
    """A job log where a runner appends to the job just before each of the first
    ``races`` guarded appends (the cancel must read again and decide again)."""

    def __init__(self, log: FakeEventLog, races: int) -> None:
        super().__init__(log)
        self.races = races

    async def append(
        self,
        event: Event,
        *,
        project_id: str,
        job_id: str,
        event_id: str,
        expected_last_seq: int | None = None,
    ) -> Published:
        if expected_last_seq is not None and self.races:
            self.races -= 1
            await super().append(
                JobStarted(attempt=1, deployment_id="d", runner_id="r", started_at=T0)
                if self.races == 0
                else JobLogged(stream="stdout", lines=["x"]),
                project_id=project_id,
                job_id=job_id,
                event_id=new_id(),
            )
        return await super().append(
            event,
            project_id=project_id,
            job_id=job_id,
            event_id=event_id,
            expected_last_seq=expected_last_seq,
        )


async def test_cancel_reads_again_when_a_runner_appends_meanwhile() -> None:
    log = FakeEventLog()
    rig = await _rig(credit=1_000, jobs=RacingRunner(log, races=2))
    await rig.app.scheduler.submit(rig.submit("j1"))
    await rig.app.scheduler.cancel(CancelJob(job_id="j1", project_id=rig.project, requested_at=T0))
    assert rig.types("j1")[0] == "job.queued"
    assert rig.types("j1")[-1] == "job.cancelled"
    job, _ = await rig.jobs.read(rig.project, "j1")
    assert job is not None
    assert job.status == "cancelled"
    await rig.app.stop()


async def test_dead_work_of_a_running_job_fails_it_as_runner_lost(funded: Rig) -> None:
    await funded.app.scheduler.submit(funded.submit("j1"))
    (work,) = funded.work.items
    await funded.jobs.append(
        JobStarted(attempt=3, deployment_id="d", runner_id="r", started_at=T0),
        project_id=funded.project,
        job_id="j1",
        event_id="j1:started:3",
    )
    funded.dead.items[41] = work
    await funded.app.lost.fail_lost(41, deliveries=4)
    assert funded.types("j1")[-1] == "job.failed"
    job, _ = await funded.jobs.read(funded.project, "j1")
    assert job is not None
    assert (job.status, job.error, job.attempts) == ("failed", "runner lost", 3)
    assert funded.dead.items == {}


async def test_dead_work_of_a_job_that_ended_is_only_removed(funded: Rig) -> None:
    await funded.app.scheduler.submit(funded.submit("j1"))
    (work,) = funded.work.items
    await funded.app.scheduler.cancel(
        CancelJob(job_id="j1", project_id=funded.project, requested_at=T0)
    )
    funded.dead.items[7] = work
    await funded.app.lost.fail_lost(7, deliveries=2)
    await funded.app.lost.fail_lost(8, deliveries=2)  # gone already: nothing to do
    assert funded.types("j1") == ["job.queued", "job.cancelled"]
    assert funded.dead.items == {}


async def test_dead_work_of_a_job_never_admitted_is_dropped_without_failing_it(
    funded: Rig,
) -> None:
    # Its job.queued was lost in flight: a job.failed would stand alone, before the
    # job.queued its redelivered submit stores.
    funded.dead.items[9] = msgspec.structs.replace(
        _work_of(funded.submit("j1")), queued_pending=True
    )
    await funded.app.lost.fail_lost(9, deliveries=4)
    assert funded.types("j1") == []
    assert funded.dead.items == {}


async def test_a_cancel_ahead_of_its_admission_admits_it_cancelled(funded: Rig) -> None:
    cancel = CancelJob(job_id="j1", project_id=funded.project, requested_at=T0)
    submit = funded.submit("j1")
    funded.submits.queue(submit)
    await funded.app.scheduler.cancel(cancel)
    assert funded.types("j1") == ["job.queued", "job.cancelled"]
    # The submit, handled after its cancel, appends nothing. Its first delivery sends
    # the work item along with job.queued before it can know (a runner drops an item
    # whose job moved on past job.queued); a redelivery reads first and sends none.
    await funded.app.scheduler.submit(submit, redelivered=True)
    assert funded.work.items == []
    await funded.app.scheduler.submit(submit)
    funded.submits.acked(submit)
    assert funded.types("j1") == ["job.queued", "job.cancelled"]
    assert [w.queued_pending for w in funded.work.items] == [True]


async def test_a_cancel_of_a_job_with_no_submit_in_sight_is_asked_again(funded: Rig) -> None:
    # The submit was acked between the two reads (another scheduler admitted it): the
    # cancel goes back to the queue rather than being dropped.
    cancel = CancelJob(job_id="j1", project_id=funded.project, requested_at=T0)
    with pytest.raises(NotAdmittedYet):
        await funded.app.scheduler.cancel(cancel)
    await funded.app.scheduler.submit(funded.submit("j1"))
    await funded.app.scheduler.cancel(cancel)
    assert funded.types("j1") == ["job.queued", "job.cancelled"]
