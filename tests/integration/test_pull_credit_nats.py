"""PullConsumer against a real nats-server: a lone client gets each message at once while
asking for credit in batches, and the server never has more than ``max_inflight`` out."""

from __future__ import annotations

import pytest
from nats.aio.msg import Msg

from puras_cli.infra.nats_server import NatsServer
from puras_common.bus import Bus, PullConsumer, connect, ensure_durable
from puras_common.events.subjects import WORK_STREAM

pytestmark = pytest.mark.integration

NEXT = f"$JS.API.CONSUMER.MSG.NEXT.{WORK_STREAM}"


async def count_requests(bus: Bus, durable: str) -> list[Msg]:
    seen: list[Msg] = []

    async def spy(msg: Msg) -> None:
        seen.append(msg)

    await bus.nc.subscribe(f"{NEXT}.{durable}", cb=spy)
    await bus.nc.flush()
    return seen


async def test_a_lone_client_gets_each_message_at_once_with_few_requests(
    nats_server: NatsServer, bus: Bus
) -> None:
    await ensure_durable(
        bus.js, WORK_STREAM, "lone", filter_subject="work.lone", ack_wait_s=30, max_deliver=2
    )
    requests = await count_requests(bus, "lone")
    worker = await connect(nats_server.url, name="worker")
    pc = PullConsumer(worker.nc, WORK_STREAM, "lone", max_inflight=8, expires_s=30)
    await pc.start()
    try:
        for i in range(40):
            await bus.publish_raw("work.lone", str(i).encode(), msg_id=f"lone-{i}")
            # A heartbeat period is 5 s: a client waiting for a batch to fill, or for a
            # request sent only after its previous message, would not get it this soon.
            msg = await pc.next(timeout=2)
            assert msg is not None
            assert msg.data == str(i).encode()
            await msg.ack()
            await pc.done()
        await bus.nc.flush()
        await worker.nc.flush()
        await bus.nc.flush()
        # One request at start, then one per four messages handled (half the credit).
        assert len(requests) == 1 + 40 // 4
    finally:
        await pc.stop()
        await worker.close()


async def test_the_server_never_has_more_than_max_inflight_out(
    nats_server: NatsServer, bus: Bus
) -> None:
    await ensure_durable(
        bus.js, WORK_STREAM, "busy", filter_subject="work.busy", ack_wait_s=30, max_deliver=2
    )
    for i in range(30):
        await bus.publish_raw("work.busy", b"x", msg_id=f"busy-{i}")
    worker = await connect(nats_server.url, name="worker")
    pc = PullConsumer(worker.nc, WORK_STREAM, "busy", max_inflight=4)
    await pc.start()
    try:
        handled = 0
        while handled < 30:
            msg = await pc.next(timeout=5)
            assert msg is not None
            info = await bus.js.consumer_info(WORK_STREAM, "busy")
            assert info.num_ack_pending <= 4
            # Acknowledged and confirmed before the credit is freed: a plain ack is
            # applied by the consumer after its next pull request may already have been,
            # so the server's count could run one ahead of what the client holds.
            await msg.ack_sync()
            await pc.done()
            handled += 1
        info = await bus.js.consumer_info(WORK_STREAM, "busy")
        assert info.num_pending == 0
    finally:
        await pc.stop()
        await worker.close()
