"""The ledger subjects of the event log, over JetStream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from puras_common.bus import Bus, Published
from puras_common.events.base import Event, decode_envelope, decode_event
from puras_common.events.subjects import AGG_LEDGER, event_subject

__all__ = ["NatsLedgerLog"]


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
        async for seq, data in self._bus.subject_messages(
            _subject(project_id), after_seq=after_seq
        ):
            env = decode_envelope(data)
            yield seq, env.id, decode_event(env)

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
