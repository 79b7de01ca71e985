"""A work message JetStream gave up on becomes a failed job (the runner-lost backstop)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import msgspec
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError

from puras_common.bus import Bus
from puras_common.clock import SystemClock
from puras_common.events import JobFailed, JobQueued, decode_envelope, decode_event
from puras_common.events.commands import RunJob
from puras_common.events.subjects import WORK_STREAM
from puras_scheduler.adapters.dead_work import NatsDeadWork
from puras_scheduler.adapters.job_log import NatsJobLog
from puras_scheduler.app.lost_work import LostWork
from puras_scheduler.entrypoints.advisories import LostWorkAdvisories

pytestmark = pytest.mark.integration


async def test_max_deliveries_advisory_fails_the_job_and_drops_the_message(bus: Bus) -> None:
    await bus.js.add_consumer(
        WORK_STREAM,
        config=ConsumerConfig(
            durable_name="runners-t",
            filter_subject="work.t",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=1.0,
            max_deliver=1,
        ),
    )
    lost = LostWork(jobs=NatsJobLog(bus), dead=NatsDeadWork(bus), clock=SystemClock())
    watcher = LostWorkAdvisories(bus, "runners-t", lost)
    await watcher.start()
    now = datetime.now(UTC)
    work = RunJob(
        job_id="j1",
        project_id="p1",
        skill="s",
        inputs={"a": 1},
        deployment_id="d",
        created_at=now,
        bundle_key="k",
        bundle_sha256="h",
    )
    await bus.append(
        JobQueued(skill="s", inputs={"a": 1}, deployment_id="d", created_at=now),
        project_id="p1",
        aggregate="job",
        aggregate_id="j1",
        event_id="j1:queued",
    )
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_event(msg: object) -> None:
        got.put_nowait(msg.data)  # type: ignore[attr-defined]

    await bus.nc.subscribe("ev.p1.job.j1", cb=on_event)
    pub = await bus.publish_raw("work.t", msgspec.json.encode(work), stream=WORK_STREAM)
    psub = await bus.js.pull_subscribe_bind("runners-t", WORK_STREAM)
    (msg,) = await psub.fetch(1, timeout=5)  # delivered once, never acked: a lost runner
    assert msg.data
    env = decode_envelope(await asyncio.wait_for(got.get(), 10))
    ev = decode_event(env)
    assert isinstance(ev, JobFailed)
    assert ev.error == "runner lost"
    assert ev.attempt == 1  # one delivery before the extra one that only fails the job
    assert env.id == "j1:terminal"
    # Stopping drains the subscription: the advisory in hand is handled to its end, the
    # dead message's removal included.
    await watcher.stop()
    with pytest.raises(NotFoundError):
        await bus.js.get_msg(WORK_STREAM, seq=pub.seq)
