"""The projects' drive subjects of the event log, over JetStream."""

from __future__ import annotations

from puras_common.bus import Bus
from puras_common.events.subjects import AGG_DRIVE, event_subject
from puras_common.events.types import DriveEvent

__all__ = ["NatsDriveLog"]


class NatsDriveLog:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def append(self, project_id: str, event: DriveEvent, *, event_id: str) -> int:
        # Not guarded by the subject's sequence: each event is a fact about storage that
        # has already happened, and the fold orders them by their place in the log.
        pub = await self._bus.append(
            event,
            project_id=project_id,
            aggregate=AGG_DRIVE,
            aggregate_id=project_id,
            event_id=event_id,
        )
        return pub.seq

    async def last_seq(self, project_id: str) -> int:
        return await self._bus.last_subject_seq(event_subject(project_id, AGG_DRIVE, project_id))
