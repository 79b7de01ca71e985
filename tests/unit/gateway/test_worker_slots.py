"""Where each HTTP worker's views stand, shared across fork (``puras_gateway.workers``)."""

from __future__ import annotations

import os

from puras_gateway.workers import WorkerSlots


def _in_child(slots: WorkerSlots, slot: int, seq: int) -> int:
    pid = os.fork()
    if pid == 0:
        slots.join(slot, os.getpid(), 0)
        slots.advance(seq)
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_a_worker_sees_where_the_others_views_stand_across_fork() -> None:
    slots = WorkerSlots(3)
    slots.join(0, os.getpid(), 10)
    assert slots.behind(10) == []  # nobody else joined: nothing to wait for
    child = _in_child(slots, 1, 7)
    assert slots.behind(7) == []
    assert slots.behind(8) == [child]  # its views have not applied 8
    slots.clear(1)  # reaped by the supervisor: no longer waited for
    assert slots.behind(8) == []


async def test_a_write_waits_for_a_lagging_worker_and_gives_up_at_its_bound() -> None:
    slots = WorkerSlots(2)
    slots.join(0, os.getpid(), 5)
    _in_child(slots, 1, 4)
    assert not await slots.wait_for(5, 0.02)
    slots.clear(1)
    assert await slots.wait_for(5, 0.02)


async def test_advance_before_joining_writes_nothing() -> None:
    slots = WorkerSlots(2)
    slots.advance(9)
    _in_child(slots, 1, 3)
    assert slots.behind(4) != []
    slots.join(0, os.getpid(), 0)
    assert slots.behind(3) == []
