"""One contract for the runner's event-log ports, held by the fake the unit tests use and
by the NATS adapter the runner uses (a real nats-server, connected as the ``runner``
identity, so the permissions the runner needs are held to the contract as well).

``JobEventLog``: :class:`runner_fakes.FakeLog` and ``NatsJobEvents``;
``DeploymentLog``: :class:`runner_fakes.FakeDeploymentLog` and ``NatsDeploymentLog``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from runner_fakes import T0, FakeDeploymentLog, FakeLog

from puras_common.bus import Bus, ConcurrencyConflict, connect
from puras_common.events.base import Event
from puras_common.events.commands import RunJob
from puras_common.events.ids import deployment_activated_id, deployment_created_id
from puras_common.events.subjects import AGG_DEPLOYMENTS
from puras_common.events.types import (
    BundleRef,
    DeploymentActivated,
    DeploymentCreated,
    JobCancelled,
    JobLogged,
    JobStarted,
    SkillRecord,
)
from puras_common.ids import new_id
from puras_runner.adapters.deployment_log import NatsDeploymentLog
from puras_runner.adapters.event_log import NatsJobEvents
from puras_runner.app.ports import DeploymentLog, JobEventLog

pytestmark = pytest.mark.integration


def _job() -> RunJob:
    return RunJob(
        job_id=new_id(),
        project_id=new_id(),
        skill="echo",
        inputs={},
        deployment_id=new_id(),
        created_at=T0,
        bundle_key="k",
        bundle_sha256="00" * 32,
    )


def _started(attempt: int) -> JobStarted:
    return JobStarted(attempt=attempt, deployment_id="d", runner_id=f"r{attempt}", started_at=T0)


@pytest.fixture
async def runner_bus(bus: Bus, nats_server: Any) -> AsyncIterator[Bus]:
    """A connection as the runner's own NATS identity (``bus``, the harness's, declared
    the streams)."""
    b = await connect(
        nats_server.address,
        name="runner-contract",
        initial_timeout=10,
        credentials=nats_server.credentials("runner"),
    )
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture(params=["fake", "nats"])
def job_log(request: pytest.FixtureRequest) -> JobEventLog:
    if request.param == "fake":
        return FakeLog()
    return NatsJobEvents(request.getfixturevalue("runner_bus"))


class Seen:
    """What a watch reported, awaitable."""

    def __init__(self) -> None:
        self.items: list[tuple[str, Event | None]] = []
        self._changed = asyncio.Event()

    def __call__(self, type_: str, event: Event | None) -> None:
        self.items.append((type_, event))
        self._changed.set()

    async def until(self, type_: str) -> None:
        async with asyncio.timeout(10):
            while not any(t == type_ for t, _ in self.items):
                self._changed.clear()
                await self._changed.wait()


async def test_append_returns_the_stored_sequence_and_last_reports_it(
    job_log: JobEventLog,
) -> None:
    job = _job()
    assert await job_log.last(job) is None
    first = await job_log.append(_started(1), job=job, event_id="a", expected_seq=None)
    second = await job_log.append(
        JobLogged(stream="stdout", lines=["x"]), job=job, event_id="b", expected_seq=first
    )
    assert second > first
    last = await job_log.last(job)
    assert last is not None
    assert (last.seq, last.type) == (second, "job.log")


async def test_an_unexpected_last_sequence_is_a_conflict(job_log: JobEventLog) -> None:
    job = _job()
    seq = await job_log.append(_started(1), job=job, event_id="a", expected_seq=None)
    with pytest.raises(ConcurrencyConflict):
        await job_log.append(_started(2), job=job, event_id="b", expected_seq=seq - 1)
    with pytest.raises(ConcurrencyConflict):
        # The first event of a subject expects 0 elsewhere; here the subject has one.
        await job_log.append(_started(2), job=job, event_id="c", expected_seq=0)
    last = await job_log.last(job)
    assert last is not None
    assert last.seq == seq


async def test_the_same_event_id_is_stored_once(job_log: JobEventLog) -> None:
    job = _job()
    seq = await job_log.append(_started(1), job=job, event_id="same", expected_seq=None)
    again = await job_log.append(_started(1), job=job, event_id="same", expected_seq=None)
    assert again == seq
    last = await job_log.last(job)
    assert last is not None
    assert last.seq == seq


async def test_latest_started_is_the_most_recent_start(job_log: JobEventLog) -> None:
    job = _job()
    assert await job_log.latest_started(job) is None
    await job_log.append(_started(1), job=job, event_id="s1", expected_seq=None)
    await job_log.append(
        JobLogged(stream="stdout", lines=["x"]), job=job, event_id="l", expected_seq=None
    )
    await job_log.append(_started(2), job=job, event_id="s2", expected_seq=None)
    latest = await job_log.latest_started(job)
    assert latest is not None
    assert (latest.attempt, latest.runner_id) == (2, "r2")


async def test_history_is_every_event_of_the_job_in_order(job_log: JobEventLog) -> None:
    job, other = _job(), _job()
    assert await job_log.history(job) == []
    await job_log.append(_started(1), job=job, event_id="h1", expected_seq=None)
    await job_log.append(_started(1), job=other, event_id="o1", expected_seq=None)
    await job_log.append(
        JobLogged(stream="stdout", lines=["x"]), job=job, event_id="h2", expected_seq=None
    )
    history = await job_log.history(job)
    assert [type(e).type for e in history] == ["job.started", "job.log"]
    assert isinstance(history[1], JobLogged)
    assert history[1].lines == ["x"]


async def test_since_lists_what_was_stored_after_a_sequence(job_log: JobEventLog) -> None:
    job = _job()
    first = await job_log.append(_started(1), job=job, event_id="s-a", expected_seq=None)
    second = await job_log.append(
        JobLogged(stream="stdout", lines=["x"]), job=job, event_id="s-b", expected_seq=None
    )
    assert await job_log.since(job, second) == []
    newer = await job_log.since(job, first)
    assert [(e.seq, e.type) for e in newer] == [(second, "job.log")]


async def test_a_watch_reports_starts_and_ends_but_not_logs(job_log: JobEventLog) -> None:
    job, other = _job(), _job()
    seen = Seen()
    watch = await job_log.watch(job, seen)
    await job_log.append(_started(1), job=job, event_id="s1", expected_seq=None)
    await job_log.append(
        JobLogged(stream="stdout", lines=["x"]), job=job, event_id="l", expected_seq=None
    )
    await job_log.append(_started(9), job=other, event_id="o", expected_seq=None)
    await job_log.append(JobCancelled(finished_at=T0), job=job, event_id="t", expected_seq=None)
    await seen.until("job.cancelled")
    assert [t for t, _ in seen.items] == ["job.started", "job.cancelled"]
    started = seen.items[0][1]
    assert isinstance(started, JobStarted)
    assert started.attempt == 1
    assert seen.items[1][1] is None
    await watch.close()

    # Closed: a second watch sees what the first no longer does.
    later = Seen()
    second = await job_log.watch(job, later)
    await job_log.append(_started(2), job=job, event_id="s2", expected_seq=None)
    await later.until("job.started")
    assert len(seen.items) == 2
    await second.close()


# -- DeploymentLog ----------------------------------------------------------------------


@dataclass
class Deployments:
    log: DeploymentLog
    record: Callable[[str, Event, str], Awaitable[None]]


@pytest.fixture(params=["fake", "nats"])
def deployment_log(request: pytest.FixtureRequest) -> Deployments:
    if request.param == "fake":
        fake = FakeDeploymentLog()

        async def record_fake(project_id: str, event: Event, event_id: str) -> None:
            if isinstance(event, DeploymentCreated):
                fake.add(project_id, event)

        return Deployments(fake, record_fake)
    bus: Bus = request.getfixturevalue("bus")

    async def record(project_id: str, event: Event, event_id: str) -> None:
        await bus.append(
            event,
            project_id=project_id,
            aggregate=AGG_DEPLOYMENTS,
            aggregate_id=project_id,
            event_id=event_id,
        )

    return Deployments(NatsDeploymentLog(request.getfixturevalue("runner_bus")), record)


def _created(deployment_id: str, skill: str) -> DeploymentCreated:
    return DeploymentCreated(
        deployment_id=deployment_id,
        notes="",
        bundle=BundleRef(key=f"p/{deployment_id}.zip", sha256="00" * 32, size=1),
        requirements_sha256=None,
        skills=[SkillRecord(name=skill, kind="deterministic", entrypoint="main.py:run")],
    )


async def test_created_finds_the_deployment_among_the_projects_events(
    deployment_log: Deployments,
) -> None:
    project, a, b = new_id(), new_id(), new_id()
    await deployment_log.record(project, _created(a, "first"), deployment_created_id(a))
    await deployment_log.record(
        project, DeploymentActivated(deployment_id=a), deployment_activated_id(a, 1)
    )
    await deployment_log.record(project, _created(b, "second"), deployment_created_id(b))
    found = await deployment_log.log.created(project, b)
    assert found is not None
    assert found.deployment_id == b
    assert [s.name for s in found.skills] == ["second"]
    assert (await deployment_log.log.created(project, a)) == _created(a, "first")


async def test_created_is_none_for_a_deployment_the_project_never_had(
    deployment_log: Deployments,
) -> None:
    project, a = new_id(), new_id()
    assert await deployment_log.log.created(project, a) is None
    await deployment_log.record(project, _created(a, "first"), deployment_created_id(a))
    assert await deployment_log.log.created(project, new_id()) is None
    assert await deployment_log.log.created(new_id(), a) is None
