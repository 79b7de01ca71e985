"""The keys' spend windows in NATS KV (Z1), against a real nats-server: many runners
reserving at once on one key never hold more than its limit, and billing's settles
count each charge once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from puras_cli.infra.nats_server import NatsServer
from puras_common.bus import Bus, connect
from puras_common.events.types import SpendLimit
from puras_common.ids import new_id
from puras_common.spend import Refused, spent_in
from puras_common.spend.book import KvSpendBook

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
LIMIT = SpendLimit(micros=1_000, period="day")


async def test_concurrent_reserves_from_many_connections_never_pass_the_limit(
    nats_server: NatsServer, bus: Bus
) -> None:
    project, key = new_id(), "kp" + new_id()[:8]
    # Eight runners, each its own connection, 40 calls of 100 micros worst case at once.
    runners = [await connect(nats_server.url, name=f"runner-{i}") for i in range(8)]
    try:
        books = [KvSpendBook(r) for r in runners]

        async def call(i: int) -> Refused | None:
            return await books[i % len(books)].reserve(
                project,
                key,
                LIMIT,
                hold_id=f"job-{i}:usage:1",
                micros=100,
                now=NOW,
                expires_at=NOW + timedelta(minutes=15),
            )

        results = await asyncio.gather(*(call(i) for i in range(40)))
    finally:
        for r in runners:
            await r.close()
    granted = [r for r in results if r is None]
    assert len(granted) == 10  # exactly the limit's worth, not one more
    assert all(isinstance(r, Refused) and r.spent + 100 > LIMIT.micros for r in results if r)
    window = await KvSpendBook(bus).window(project, key)
    assert spent_in(window, "day", NOW) == 1_000
    assert len(window.holds) == 10


async def test_settles_count_each_charge_once_and_free_the_rest_of_the_hold(bus: Bus) -> None:
    project, key = new_id(), "kp" + new_id()[:8]
    book = KvSpendBook(bus)
    exp = NOW + timedelta(minutes=15)
    for i in range(3):
        r = await book.reserve(
            project, key, LIMIT, hold_id=f"u{i}", micros=300, now=NOW, expires_at=exp
        )
        assert r is None
    refused = await book.reserve(
        project, key, LIMIT, hold_id="u3", micros=300, now=NOW, expires_at=exp
    )
    assert refused == Refused(spent=900, limit=1_000)
    # Billing charges the first call at 40 micros; the second is charged and delivered
    # twice; the third failed upstream and its runner released the hold.
    await book.settle(project, key, hold_id="u0", micros=40, now=NOW, first_charge=True)
    await book.settle(project, key, hold_id="u1", micros=55, now=NOW, first_charge=True)
    await book.settle(project, key, hold_id="u1", micros=55, now=NOW, first_charge=False)
    await book.release(project, key, hold_id="u2", now=NOW)
    window = await book.window(project, key)
    assert (window.day_spent, window.holds) == (95, {})
    assert (
        await book.reserve(project, key, LIMIT, hold_id="u3", micros=900, now=NOW, expires_at=exp)
        is None
    )
