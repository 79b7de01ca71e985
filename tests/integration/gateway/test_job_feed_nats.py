"""The gateway's live job tails over a real nats-server, as the gateway identity: one
shared subscription per project, events dispatched to the tails of their own job only, in
place before whatever the gateway publishes next, and ended once no tail needs it.

Each event here is appended in answer to something the gateway publishes after making
its tails (as a job's events follow its submit): a runner identity, asked over its media
subject, appends it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import pytest
from nats.aio.msg import Msg

from puras_cli.infra.nats_server import NatsServer
from puras_common.bus import Bus, connect
from puras_common.events import JobQueued, JobStarted
from puras_common.events.subjects import AGG_JOB
from puras_common.ids import new_id
from puras_gateway.adapters.job_log import JobLog

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RPC = "rpc.runner.r1.media"


class _Ask(msgspec.Struct):
    project: str
    job: str
    event_id: str
    kind: str = "queued"


@dataclass
class Pair:
    gw: Bus
    runner: Bus

    async def cause(self, project: str, job: str, event_id: str, kind: str = "queued") -> None:
        """The gateway publishes; in answer, the runner appends one event of ``job``."""
        await self.gw.nc.publish(RPC, msgspec.json.encode(_Ask(project, job, event_id, kind)))


async def _append(runner: Bus, ask: _Ask) -> None:
    ev = (
        JobQueued(skill="echo", inputs={}, deployment_id="d1", created_at=T0)
        if ask.kind == "queued"
        else JobStarted(attempt=1, deployment_id="d1", runner_id="r", started_at=T0)
    )
    await runner.append(
        ev, project_id=ask.project, aggregate=AGG_JOB, aggregate_id=ask.job, event_id=ask.event_id
    )


@pytest.fixture
async def pair(nats_server: NatsServer, bus: Bus) -> AsyncIterator[Pair]:
    # ``bus`` (the operator's connection) made the streams.
    conns = []
    for name in ("gateway", "runner"):
        b = await connect(
            nats_server.address, name=f"test-{name}", credentials=nats_server.credentials(name)
        )
        await b.nc.flush()  # connected at the server before anything is published
        conns.append(b)
    gw, runner = conns

    async def answer(msg: Msg) -> None:
        await _append(runner, msgspec.json.decode(msg.data, type=_Ask))

    await runner.nc.subscribe(RPC, cb=answer)
    await runner.nc.flush()
    try:
        yield Pair(gw, runner)
    finally:
        for b in conns:
            await b.close()


async def test_tails_of_a_project_share_one_subscription_and_see_only_their_job(
    pair: Pair,
) -> None:
    gw = pair.gw
    log = JobLog(gw)
    project, job1, job2 = new_id(), new_id(), new_id()
    subs_before = len(gw.nc._subs)
    a = await log.tail(project, job1)
    b = await log.tail(project, job2)
    c = await log.tail(project, job1)
    assert log.following() == [project]
    assert len(gw.nc._subs) == subs_before + 1, "one NATS subscription for the three tails"

    await pair.cause(project, job2, "q2")
    await pair.cause(project, job1, "q1")
    await pair.cause(project, job1, "s1", kind="started")
    for t in (a, c):
        got = [await t.next(5), await t.next(5)]
        assert [e.envelope.id for e in got if e is not None] == ["q1", "s1"]
        assert [e.idx for e in got if e is not None] == [1, 2]
    first = await b.next(5)
    assert first is not None
    assert first.envelope.id == "q2"
    # job1's events never reached job2's tail.
    assert b.poll() is None
    assert not await b.wait(0)
    for t in (a, b, c):
        await t.close()


async def test_an_event_caused_by_the_next_publish_is_never_missed(pair: Pair) -> None:
    """The tail made just before the gateway publishes (its project's first too) has the
    event appended in answer, with no flush or round trip between."""
    log = JobLog(pair.gw)
    for project in (new_id(), new_id()):
        for _ in range(3):
            job = new_id()
            tail = await log.tail(project, job)
            await pair.cause(project, job, f"q-{job}")
            ev = await tail.next(5)
            assert ev is not None
            assert ev.envelope.id == f"q-{job}"
            await tail.close()
    assert len(log.following()) == 2


async def test_the_subscription_ends_when_no_tail_needs_it_and_comes_back(pair: Pair) -> None:
    gw = pair.gw
    log = JobLog(gw, linger_s=0)
    project, job = new_id(), new_id()
    subs_before = len(gw.nc._subs)
    tail = await log.tail(project, job)
    await tail.close()
    for _ in range(1000):
        if not log.following() and len(gw.nc._subs) == subs_before:
            break
        await asyncio.sleep(0)
    assert log.following() == []
    assert len(gw.nc._subs) == subs_before

    again = await log.tail(project, job)
    await pair.cause(project, job, "q")
    ev = await again.next(5)
    assert ev is not None
    assert ev.envelope.id == "q"
    await again.close()


async def test_a_tail_in_use_keeps_the_subscription(pair: Pair) -> None:
    log = JobLog(pair.gw, linger_s=0)
    project, done, running = new_id(), new_id(), new_id()
    kept = await log.tail(project, running)
    gone = await log.tail(project, done)
    await gone.close()
    for _ in range(50):
        await asyncio.sleep(0)
    assert log.following() == [project]
    await pair.cause(project, running, "q")
    ev = await kept.next(5)
    assert ev is not None
    assert ev.envelope.id == "q"
    await kept.close()
