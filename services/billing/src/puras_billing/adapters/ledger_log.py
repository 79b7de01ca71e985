"""The ledger subjects of the event log, over JetStream."""

from __future__ import annotations

from puras_common.bus import Bus, Published
from puras_common.events.base import Event, decode_envelope
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

    async def find(self, project_id: str, event_id: str) -> int | None:
        async for seq, data in self._bus.subject_messages(_subject(project_id)):
            if decode_envelope(data).id == event_id:
                return seq
        return None


def _subject(project_id: str) -> str:
    # One ledger subject per project: its aggregate id is the project id.
    return event_subject(project_id, AGG_LEDGER, project_id)
