"""One contract for the runner's ``WorkSource``, held by the fake the unit tests use
(:class:`runner_fakes.FakeWorkSource`) and by the JetStream one the runner uses
(``NatsWorkSource`` over the pool's durable pull consumer, as the ``runner`` identity)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from runner_fakes import FakeWorkSource

from puras_common.bus import Bus, PullConsumer, connect, ensure_durable
from puras_common.events.ids import runners_durable
from puras_common.events.subjects import WORK_STREAM, work_subject
from puras_common.ids import new_id
from puras_runner.app.ports import WorkSource
from puras_runner.entrypoints.work import NatsWorkSource

pytestmark = pytest.mark.integration


@dataclass
class Work:
    source: WorkSource
    publish: Callable[[bytes], Awaitable[None]]


@pytest.fixture
async def nats_work(bus: Bus, nats_server: Any) -> AsyncIterator[Work]:
    pool = f"c{new_id().replace('-', '')[:12]}"
    runner = await connect(
        nats_server.address,
        name="runner-contract",
        initial_timeout=10,
        credentials=nats_server.credentials("runner"),
    )
    await ensure_durable(
        runner.js,
        WORK_STREAM,
        runners_durable(pool),
        filter_subject=work_subject(pool),
        ack_wait_s=30,
        max_deliver=4,
    )
    consumer = PullConsumer(runner.nc, WORK_STREAM, runners_durable(pool), max_inflight=4)
    await consumer.start()

    async def publish(data: bytes) -> None:
        await bus.publish_raw(work_subject(pool), data, msg_id=new_id(), stream=WORK_STREAM)

    try:
        yield Work(NatsWorkSource(consumer), publish)
    finally:
        await consumer.stop()
        await runner.close()


@pytest.fixture(params=["fake", "nats"])
def work(request: pytest.FixtureRequest) -> Work:
    if request.param == "nats":
        nats: Work = request.getfixturevalue("nats_work")
        return nats
    fake = FakeWorkSource()

    async def publish_fake(data: bytes) -> None:
        fake.publish(data)

    return Work(fake, publish_fake)


async def test_a_work_item_is_delivered_as_its_first_attempt(work: Work) -> None:
    await work.publish(b'{"job": 1}')
    msg = await work.source.next(10)
    assert msg is not None
    assert (msg.data, msg.attempt) == (b'{"job": 1}', 1)
    await msg.in_progress()
    await msg.ack()
    await work.source.done()


async def test_nothing_to_deliver_is_none_after_the_timeout(work: Work) -> None:
    assert await work.source.next(0.2) is None


async def test_a_work_item_given_back_comes_again_as_the_next_attempt(work: Work) -> None:
    await work.publish(b'{"job": 2}')
    first = await work.source.next(10)
    assert first is not None
    await first.nak()
    await work.source.done()
    again = await work.source.next(10)
    assert again is not None
    assert (again.data, again.attempt) == (b'{"job": 2}', 2)
    await again.ack()
    await work.source.done()


async def test_items_come_in_the_order_they_were_queued(work: Work) -> None:
    for i in range(3):
        await work.publish(b"%d" % i)
    got: list[bytes] = []
    while len(got) < 3:
        msg = await work.source.next(10)
        assert msg is not None
        got.append(msg.data)
        for more in work.source.take_ready(10):
            got.append(more.data)
    assert got == [b"0", b"1", b"2"]
