from __future__ import annotations

import pytest

from puras_common.bus import Bus, ConcurrencyConflict, PullConsumer, ensure_durable
from puras_common.events import CreditGranted, ProjectCreated
from puras_common.events.subjects import WORK_STREAM

pytestmark = pytest.mark.integration


async def test_append_dedupes_and_checks_expected_sequence(bus: Bus) -> None:
    p = await bus.append(
        ProjectCreated(name="a"),
        project_id="p1",
        aggregate="project",
        aggregate_id="p1",
        event_id="p1:created",
    )
    again = await bus.append(
        ProjectCreated(name="a"),
        project_id="p1",
        aggregate="project",
        aggregate_id="p1",
        event_id="p1:created",
    )
    assert again.duplicate
    assert again.seq == p.seq
    g = await bus.append(
        CreditGranted(grant_id="g", micros=5),
        project_id="p1",
        aggregate="ledger",
        aggregate_id="p1",
        event_id="g1",
        expected_last_subject_seq=0,
    )
    with pytest.raises(ConcurrencyConflict):
        await bus.append(
            CreditGranted(grant_id="g2", micros=5),
            project_id="p1",
            aggregate="ledger",
            aggregate_id="p1",
            event_id="g2",
            expected_last_subject_seq=0,
        )
    assert await bus.last_subject_seq("ev.p1.ledger.p1") == g.seq


async def test_pull_consumer_delivers_published_messages(bus: Bus) -> None:
    await ensure_durable(
        bus.js, WORK_STREAM, "t", filter_subject="work.t", ack_wait_s=5, max_deliver=2
    )
    pc = PullConsumer(bus.nc, WORK_STREAM, "t", max_inflight=4, expires_s=2, heartbeat_s=0.5)
    await pc.start()
    for i in range(10):
        await bus.publish_raw("work.t", str(i).encode(), msg_id=f"m{i}")
    got: list[int] = []
    while len(got) < 10:
        msg = await pc.next(timeout=5)
        assert msg is not None
        got.append(int(msg.data))
        await msg.ack()
        await pc.done()
    assert sorted(got) == list(range(10))
    await pc.stop()


async def test_pull_consumer_waits_across_request_expiry(bus: Bus) -> None:
    await ensure_durable(
        bus.js, WORK_STREAM, "t2", filter_subject="work.t2", ack_wait_s=5, max_deliver=2
    )
    pc = PullConsumer(bus.nc, WORK_STREAM, "t2", max_inflight=2, expires_s=1, heartbeat_s=0.4)
    await pc.start()
    assert await pc.next(timeout=2.5) is None  # two expiries pass with nothing to deliver
    await bus.publish_raw("work.t2", b"x", msg_id="late")
    msg = await pc.next(timeout=5)
    assert msg is not None
    assert msg.data == b"x"
    await msg.ack()
    await pc.done()
    await pc.stop()


async def test_a_publish_is_refused_outside_its_stream_and_where_no_stream_listens(
    bus: Bus,
) -> None:
    from nats.js.errors import APIError, NoStreamResponseError

    # The subject is the event log's; the publish names the work stream: not stored.
    with pytest.raises(APIError) as refused:
        await bus.publish_raw("ev.p1.job.j1", b"{}", msg_id="x1", stream=WORK_STREAM)
    assert not isinstance(refused.value, ConcurrencyConflict)
    assert await bus.last_subject_seq("ev.p1.job.j1") == 0
    with pytest.raises(NoStreamResponseError):
        await bus.publish_raw("nowhere.at.all", b"{}", msg_id="x2")
    stored = await bus.publish_raw("work.t3", b"x", msg_id="x3", stream=WORK_STREAM)
    assert stored.seq > 0
    assert not stored.duplicate
