"""The gateway's command port: one suite, run against the fake the unit tests use
(``tests/gateway_fakes.py``) and the NATS adapter on a real nats-server, so that the fake
cannot drift from what production does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import pytest
from gateway_fakes import FakeCommands

from puras_common.bus import Bus
from puras_common.events.commands import CancelJob, SubmitJob
from puras_common.events.subjects import CMDS_STREAM, submit_subject
from puras_common.ids import new_id
from puras_gateway.adapters.commands import SchedulerCommands
from puras_gateway.app.ports import Commands

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Take(Protocol):
    async def __call__(self, project_id: str, job_id: str) -> None: ...


@dataclass
class Queue:
    commands: Commands
    take: Take
    """What the scheduler's ack does: the submit leaves the queue."""


@pytest.fixture(params=["fake", "nats"])
async def queue(request: pytest.FixtureRequest, bus: Bus) -> AsyncIterator[Queue]:
    if request.param == "fake":
        fake = FakeCommands()

        async def take_fake(project_id: str, job_id: str) -> None:
            fake.take(project_id, job_id)

        yield Queue(fake, take_fake)
        return

    async def take_nats(project_id: str, job_id: str) -> None:
        msg = await bus.js.get_last_msg(CMDS_STREAM, submit_subject(project_id, job_id))
        await bus.js.delete_msg(CMDS_STREAM, int(msg.seq or 0))

    yield Queue(SchedulerCommands(bus), take_nats)


def _submit(project_id: str, **kw: Any) -> SubmitJob:
    return SubmitJob(
        job_id=new_id(),
        project_id=project_id,
        skill="echo",
        inputs={"text": "hi"},
        submitted_at=T0,
        deployment_id="d1",
        **kw,
    )


async def test_a_submit_is_pending_until_taken(queue: Queue) -> None:
    p = new_id()
    cmd = _submit(p, after_seq=3)
    assert await queue.commands.pending_submit(p, cmd.job_id) is None
    await queue.commands.submit(cmd)
    assert await queue.commands.pending_submit(p, cmd.job_id) == cmd
    await queue.take(p, cmd.job_id)
    assert await queue.commands.pending_submit(p, cmd.job_id) is None


async def test_a_pending_submit_is_found_only_in_its_project(queue: Queue) -> None:
    p, other = new_id(), new_id()
    cmd = _submit(p)
    await queue.commands.submit(cmd)
    assert await queue.commands.pending_submit(other, cmd.job_id) is None
    await queue.take(p, cmd.job_id)


async def test_a_repeated_submit_keeps_the_first(queue: Queue) -> None:
    p = new_id()
    first = _submit(p)
    again = SubmitJob(
        job_id=first.job_id,
        project_id=p,
        skill="echo",
        inputs={"text": "other"},
        submitted_at=T0,
    )
    await queue.commands.submit(first)
    await queue.commands.submit(again)
    assert await queue.commands.pending_submit(p, first.job_id) == first
    await queue.take(p, first.job_id)


async def test_a_cancel_is_not_a_pending_submit(queue: Queue) -> None:
    p = new_id()
    job_id = new_id()
    await queue.commands.cancel(CancelJob(job_id=job_id, project_id=p, requested_at=T0))
    assert await queue.commands.pending_submit(p, job_id) is None
