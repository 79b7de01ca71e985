"""The ledger subjects of the event log, over JetStream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from puras_common.bus import Bus, Published
from puras_common.bus.follow import EventFollower
from puras_common.events.base import Event, decode_envelope, decode_event
from puras_common.events.subjects import AGG_LEDGER, event_subject

__all__ = ["DIRECT_READS", "NatsLedgerLog"]

DIRECT_READS = 32
"""Ledger events read one direct get each before the rest is streamed."""


class NatsLedgerLog:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def last_seq(self, project_id: str) -> int:
        return await self._bus.last_subject_seq(_subject(project_id))

    async def append(
        self, event: Event, *, project_id: str, event_id: str, expected_last_seq: int
    ) -> Published:
        return await self._bus.append(
            event,
            project_id=project_id,
            aggregate=AGG_LEDGER,
            aggregate_id=project_id,
            event_id=event_id,
            expected_last_subject_seq=expected_last_seq,
        )

    async def events(
        self, project_id: str, *, after_seq: int = 0
    ) -> AsyncIterator[tuple[int, str, Event | None]]:
        # A few events (the usual catch-up: what another replica appended) by direct
        # gets; a long ledger (a project's first fold in this process) through an
        # ordered consumer, which streams it instead of one request per event.
        subject = _subject(project_id)
        last, n = after_seq, 0
        async for seq, data in self._bus.subject_messages(subject, after_seq=after_seq):
            env = decode_envelope(data)
            yield seq, env.id, decode_event(env)
            last, n = seq, n + 1
            if n >= DIRECT_READS:
                break
        else:
            return
        follower = EventFollower(self._bus.js, [subject], start_seq=last + 1)
        await follower.start()
        try:
            left = follower.initial_pending
            while left > 0:
                batch = await follower.next_batch(min(left, 1024), timeout=30.0)
                if not batch:
                    raise TimeoutError(f"reading the ledger of {project_id} stalled")
                for raw in batch:
                    env = decode_envelope(raw.data)
                    yield raw.seq, env.id, decode_event(env)
                left -= len(batch)
        finally:
            await follower.stop()

    async def find(self, project_id: str, event_id: str) -> int | None:
        found = await self.find_event(project_id, event_id)
        return None if found is None else found[0]

    async def find_event(
        self, project_id: str, event_id: str, *, after_seq: int = 0
    ) -> tuple[int, Event | None] | None:
        async for seq, data in self._bus.subject_messages(
            _subject(project_id), after_seq=after_seq
        ):
            env = decode_envelope(data)
            if env.id == event_id:
                return seq, decode_event(env)
        return None


def _subject(project_id: str) -> str:
    # One ledger subject per project: its aggregate id is the project id.
    return event_subject(project_id, AGG_LEDGER, project_id)
