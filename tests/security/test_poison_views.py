"""The gateway's in-memory views fed a poisoned log: they skip, count and keep going.

Published straight into PURAS_EVENTS: bytes that are not JSON and a known type with a
wrong field on key subjects, between two good key events. The views apply both good
ones, skip the bad ones with a record (counted, handed to ``on_skip``), and stay alive;
a follower that dies for another reason says so (``alive`` false, ``ready`` cleared,
``on_death`` called), so the gateway's /readyz and the scheduler's health turn red.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import msgspec
import pytest

from puras_common.bus.follow import RawEvent
from puras_common.bus.view_follower import ViewFollower
from puras_common.events.base import Envelope, encode_event
from puras_common.events.subjects import (
    AGG_KEY,
    AGG_LEDGER,
    EVENTS_STREAM,
    aggregate_filter,
    event_subject,
)
from puras_common.events.types import ApiKeyCreated, CreditGranted
from puras_common.views.keys import KeysView
from puras_gateway.adapters.live_views import LiveViews
from puras_scheduler.adapters.state import SchedulerState

pytestmark = pytest.mark.integration


def _key(project: str, prefix: str, secret: Any = "ab" * 32) -> bytes:
    ev = ApiKeyCreated(prefix=prefix, secret_sha256="ab" * 32, created_by="admin")
    env = msgspec.json.decode(
        encode_event(ev, event_id=f"key:{prefix}", project_id=project, aggregate_id=prefix)
    )
    env["data"]["secret_sha256"] = secret
    return msgspec.json.encode(env)


async def _publish(bus: Any, subject: str, data: bytes) -> int:
    return int((await bus.js.publish(subject, data, stream=EVENTS_STREAM)).seq)


async def test_live_views_skip_bad_events_and_apply_the_rest(bus: Any) -> None:
    p = uuid.uuid4().hex
    k1, k2, k3, k4 = (uuid.uuid4().hex[:12] for _ in range(4))
    await _publish(bus, event_subject(p, AGG_KEY, k1), _key(p, k1))
    s_junk = await _publish(bus, event_subject(p, AGG_KEY, k2), b"\x00\xff not json")
    s_wrong = await _publish(bus, event_subject(p, AGG_KEY, k3), _key(p, k3, secret=42))
    views = LiveViews(bus)
    await views.start()
    try:
        s_last = await _publish(bus, event_subject(p, AGG_KEY, k4), _key(p, k4))
        assert await views.wait_for(s_last, 10)
        assert set(views.keys.keys) == {k1, k4}
        assert views.alive
        assert views.skipped_total == 2
        assert views.unaccounted == 2  # no pool here: nothing accounts for them
        assert set(views._follow.skipped) == {s_junk, s_wrong}
    finally:
        await views.stop()


async def test_a_follower_that_dies_says_so(bus: Any) -> None:
    p = uuid.uuid4().hex
    seen: list[tuple[int, Envelope | None, str]] = []
    view = KeysView()

    def on_skip(raw: RawEvent, env: Envelope | None, reason: str) -> None:
        seen.append((raw.seq, env, reason))

    deaths: list[str] = []
    follower = ViewFollower(
        bus,
        [aggregate_filter(AGG_KEY)],
        view.apply,
        name="t",
        on_skip=on_skip,
        on_death=deaths.append,
    )
    await follower.start()
    try:
        s_bad = await _publish(bus, event_subject(p, AGG_KEY, "k1"), b"[1, 2")
        s_ok = await _publish(bus, event_subject(p, AGG_KEY, "k2"), _key(p, "k2"))
        assert await follower.wait_for(s_ok, 10)
        assert [s for s, _, _ in seen] == [s_bad]
        assert follower.alive
        assert follower.failure is None

        # The log itself failing (not an event): the follower ends and says why.
        inner = follower._follower
        assert inner is not None

        async def broken(*_a: Any, **_k: Any) -> list[RawEvent]:
            raise RuntimeError("consumer deleted")

        inner.next_batch = broken  # type: ignore[method-assign]
        await _publish(bus, event_subject(p, AGG_KEY, "k3"), _key(p, "k3"))
        assert follower._task is not None
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(asyncio.shield(follower._task), 10)
        assert not follower.alive
        assert "consumer deleted" in (follower.failure or "")
        assert not follower.ready.is_set()
        assert len(deaths) == 1
        assert "consumer deleted" in deaths[0]
    finally:
        await follower.stop()


def _kill(follow: ViewFollower) -> asyncio.Task[None]:
    """Make the follower's next read fail as a lost consumer would."""
    inner = follow._follower
    assert inner is not None

    async def broken(*_a: Any, **_k: Any) -> list[RawEvent]:
        raise RuntimeError("consumer deleted")

    inner.next_batch = broken  # type: ignore[method-assign]
    assert follow._task is not None
    return follow._task


async def test_a_gateway_whose_views_die_is_not_ready(bus: Any) -> None:
    views = LiveViews(bus)
    await views.start()
    try:
        await asyncio.wait_for(views.ready.wait(), 10)
        task = _kill(views._follow)
        p = uuid.uuid4().hex
        await _publish(bus, event_subject(p, AGG_KEY, "k1"), _key(p, "k1"))
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(asyncio.shield(task), 10)
        # What Gateway.readiness_problems reads: both say "not ready".
        assert not views.ready.is_set()
        assert not views.alive
    finally:
        await views.stop()


async def test_a_scheduler_whose_views_die_is_not_ready_and_told(bus: Any) -> None:
    deaths: list[str] = []
    state = SchedulerState(bus, on_death=deaths.append)
    await state.start(lambda _project: None)
    try:
        await asyncio.wait_for(state.ready.wait(), 10)
        task = _kill(state._follow)
        p = uuid.uuid4().hex
        grant = CreditGranted(grant_id="g1", micros=1)
        await _publish(
            bus,
            event_subject(p, AGG_LEDGER, p),
            encode_event(grant, event_id=f"grant:{p}", project_id=p, aggregate_id=p),
        )
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(asyncio.shield(task), 10)
        # The scheduler's health answers from ``ready``; ``on_death`` stops its commands.
        assert not state.ready.is_set()
        assert not state.alive
        assert deaths
        assert "consumer deleted" in deaths[0]
    finally:
        await state.stop()
