"""PullConsumer's credit, against a recording stand-in for the NATS client: at most
``max_inflight`` messages out, and freed credit asked for again in batches (once half is
free, or when nothing is asked for), so a lone client never waits for a request."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from nats.aio.msg import Msg

from puras_common.bus.pull import PullConsumer

Callback = Callable[[Msg], Awaitable[None]]


class RecordingNats:
    """What PullConsumer uses of a NATS client; pull requests are recorded, not sent."""

    def __init__(self) -> None:
        self.is_connected = True
        self.stats: dict[str, int] = {"reconnects": 0}
        self.asks: list[tuple[str, int]] = []  # (reply subject, batch)
        self.cb: Callback | None = None

    def new_inbox(self) -> str:
        return "_INBOX.t.abc"

    async def subscribe(self, subject: str, cb: Callback) -> Any:
        assert subject == "_INBOX.t.abc"
        self.cb = cb
        return self

    async def unsubscribe(self) -> None:
        self.cb = None

    async def publish(self, subject: str, payload: bytes, reply: str = "") -> None:
        assert subject == "$JS.API.CONSUMER.MSG.NEXT.S.d"
        self.asks.append((reply, json.loads(payload)["batch"]))

    async def deliver(self, n: int = 1) -> None:
        assert self.cb is not None
        for i in range(n):
            await self.cb(Msg(self, subject="work.x", reply=f"$JS.ACK.{i}", data=b"job"))  # type: ignore[arg-type]

    async def status(self, code: str, description: str, left: int) -> None:
        assert self.cb is not None
        headers = {"Status": code, "Description": description, "Nats-Pending-Messages": str(left)}
        await self.cb(Msg(self, subject="_INBOX.t.abc", data=b"", headers=headers))  # type: ignore[arg-type]

    def asked(self) -> int:
        return sum(batch for _, batch in self.asks)


async def started(nc: RecordingNats, max_inflight: int) -> PullConsumer:
    pc = PullConsumer(nc, "S", "d", max_inflight=max_inflight)  # type: ignore[arg-type]
    await pc.start()
    return pc


async def one_by_one(nc: RecordingNats, pc: PullConsumer, count: int) -> None:
    """A lone client: each message delivered, handled and done before the next."""
    for _ in range(count):
        assert pc.requested > 0, "nothing asked for: the next message would wait"
        await nc.deliver()
        assert await pc.next(timeout=1) is not None
        await pc.done()


async def test_a_lone_client_asks_once_per_half_of_its_credit() -> None:
    nc = RecordingNats()
    pc = await started(nc, 8)
    assert [b for _, b in nc.asks] == [8]
    await one_by_one(nc, pc, 3)
    assert len(nc.asks) == 1  # three free: under half, the first request still gives
    await one_by_one(nc, pc, 1)
    assert [b for _, b in nc.asks] == [8, 4]
    await one_by_one(nc, pc, 40)
    assert len(nc.asks) == 12
    assert nc.asked() - 44 == pc.requested == 8 - pc.free
    await pc.stop()


@pytest.mark.parametrize("max_inflight", [1, 2, 3])
async def test_small_credit_is_asked_for_after_every_message(max_inflight: int) -> None:
    nc = RecordingNats()
    pc = await started(nc, max_inflight)
    await one_by_one(nc, pc, 10)
    assert len(nc.asks) == 11
    assert nc.asked() - 10 == max_inflight
    await pc.stop()


async def test_never_more_than_max_inflight_asked_for_or_held() -> None:
    nc = RecordingNats()
    pc = await started(nc, 4)
    await nc.deliver(4)
    held = [await pc.next(timeout=1) for _ in range(4)]
    assert all(held)
    assert pc.free == 0
    await pc.done()
    # One free, none asked for: a standing request is needed, or a fifth message never
    # comes while three are still in hand.
    assert nc.asks[-1][1] == 1
    assert pc.requested == 1
    await pc.done()
    await pc.done()
    assert nc.asked() - 4 == pc.requested == 3  # the third done freed a batch of two
    assert pc.free == 0
    await pc.stop()


async def test_an_expired_request_gives_back_what_it_still_owed() -> None:
    nc = RecordingNats()
    pc = await started(nc, 8)
    await one_by_one(nc, pc, 2)
    await nc.status("408", "Request Timeout", left=6)
    # Nothing stands any more: everything free is asked for at once.
    assert nc.asks[-1][1] == 8
    assert pc.requested == 8
    await pc.stop()


async def test_free_credit_stands_in_a_request_once_the_last_asked_for_came() -> None:
    nc = RecordingNats()
    pc = await started(nc, 4)
    await nc.deliver(3)
    assert len(pc.take_ready(3)) == 3
    await pc.done()
    assert len(nc.asks) == 1  # one free, one still asked for
    # A burst: the last message asked for comes while a slot is free; the next one of
    # the burst must not wait until a message in hand is done.
    await nc.deliver()
    assert nc.asks[-1][1] == 1
    assert pc.requested == 1
    await pc.stop()
