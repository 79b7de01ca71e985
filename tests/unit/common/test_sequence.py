"""SequenceBarrier: the one "wait until sequence N is applied" of every follower."""

from __future__ import annotations

import asyncio

from puras_common.sequence import SequenceBarrier


async def test_a_reached_sequence_answers_at_once() -> None:
    b = SequenceBarrier(5)
    assert await b.wait_for(5, 0)
    assert await b.wait_for(3, 0)
    assert not await b.wait_for(6, 0)


async def test_waiters_wake_when_their_sequence_is_applied_and_not_before() -> None:
    b = SequenceBarrier()
    low = asyncio.ensure_future(b.wait_for(3, 5))
    high = asyncio.ensure_future(b.wait_for(10, 5))
    await asyncio.sleep(0)
    b.advance(4)
    assert await low
    assert not high.done()
    b.advance(2)  # going back is ignored
    assert b.seq == 4
    b.advance(10)
    assert await high


async def test_a_wait_times_out_and_leaves_nothing_behind() -> None:
    b = SequenceBarrier()
    assert not await b.wait_for(1, 0.01)
    assert b._waiters == []
    task = asyncio.ensure_future(b.wait_for(1, 5))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert b._waiters == []


async def test_reset_starts_over_lower() -> None:
    b = SequenceBarrier(100)
    b.reset(0)
    assert b.seq == 0
    waiting = asyncio.ensure_future(b.wait_for(50, 5))
    await asyncio.sleep(0)
    assert not waiting.done()
    b.advance(60)
    assert await waiting
