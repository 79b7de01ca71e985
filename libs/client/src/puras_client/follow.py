"""Following one job's event stream across dropped connections (J5, Z6).

A stream names its job (the ``Puras-Job-Id`` header of a submit, the ``job_id`` of every
frame) and every durable frame carries its event id; after a drop the client attaches
again with ``Last-Event-ID`` set to the last id it handed out, and drops any frame at or
below it, so a caller sees every event once and in order. Live text (``model_delta``,
Z5) has no id of its own and is passed through as it comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from puras_client.errors import ClientError
from puras_client.models import JobEvent
from puras_client.sse import SseEvent

__all__ = ["JOB_ID_HEADER", "FollowState"]

JOB_ID_HEADER: Final = "Puras-Job-Id"


@dataclass
class FollowState:
    job_id: str | None = None
    last_id: int = 0
    """The id of the last durable event handed out (what ``Last-Event-ID`` resumes after)."""
    done: bool = False
    """The ``end`` frame came: nothing follows."""
    drops: int = 0
    """Connections lost in a row without a new event in between."""

    def opened(self, header_job_id: str | None) -> None:
        if self.job_id is None and header_job_id:
            self.job_id = header_job_id

    def accept(self, frame: SseEvent) -> JobEvent | None:
        """The event of a frame, or ``None`` for one already handed out before a drop."""
        try:
            data = frame.json()
        except ValueError as exc:
            raise ClientError(
                f"the event stream sent a frame that is not JSON: {frame.data[:200]!r}"
            ) from exc
        if frame.event == "end":
            self.done = True
            return JobEvent(id=None, type="end", payload=data, job_id=self.job_id)
        ev = JobEvent.from_json(data)
        if self.job_id is None and ev.job_id:
            self.job_id = ev.job_id
        if ev.id is not None:
            if ev.id <= self.last_id:
                return None
            self.last_id = ev.id
            self.drops = 0
        return ev

    def resume_headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream"}
        if self.last_id:
            headers["Last-Event-ID"] = str(self.last_id)
        return headers

    def dropped(self, max_reconnects: int, reason: str) -> None:
        """Count a lost connection; a :class:`ClientError` when it cannot be resumed."""
        self.drops += 1
        if self.job_id is None:
            raise ClientError(
                f"the event stream dropped ({reason}) before it named its job; list_jobs() "
                "shows whether the job was accepted (submit with an idempotency key to retry "
                "safely)"
            )
        if self.drops > max_reconnects:
            raise ClientError(
                f"the event stream of job {self.job_id} dropped {self.drops} times in a row "
                f"({reason}); attach again later from event {self.last_id}"
            )
