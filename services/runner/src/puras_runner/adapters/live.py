"""Live frames of a job over core NATS (the runner's ``LiveFeed``, Z5).

A frame goes to ``live.<project>.job.<job>``, a subject no stream captures: nothing is
stored, and a frame nobody is listening for is simply gone. That is the contract: the
model's text as it is generated is a courtesy to clients attached right now, and the
log's ``job.model_response`` holds the whole response for everyone else. So a publish
never waits for the server and never raises into the agent loop; a frame that cannot be
sent is dropped and logged at debug level.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from puras_common.bus import Bus
from puras_common.events.commands import RunJob
from puras_common.events.subjects import live_subject
from puras_common.logging import get_logger

__all__ = ["NatsLiveFeed"]

log = get_logger(__name__)

_json = msgspec.json.Encoder()


class NatsLiveFeed:
    """Publishes a job's live frames, fire and forget."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        # Sends still running, held so they are not collected mid-flight.
        self._sending: set[asyncio.Task[None]] = set()

    def publish(self, job: RunJob, frame: dict[str, Any]) -> None:
        try:
            subject = live_subject(job.project_id, job.job_id)
            data = _json.encode(frame)
            loop = asyncio.get_running_loop()
        except Exception as exc:  # a frame that cannot be sent is text the log holds anyway
            log.debug("live frame dropped", job_id=job.job_id, error=str(exc))
            return
        # The client queues the message before its first await, so sends started in order
        # reach the server in order (the pieces of a text stay in sequence).
        task = loop.create_task(self._send(subject, data, job.job_id))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, subject: str, data: bytes, job_id: str) -> None:
        try:
            await self._bus.nc.publish(subject, data)
        except Exception as exc:  # closed, reconnecting, over the payload limit, ...
            log.debug("live frame dropped", job_id=job_id, error=str(exc))

    async def close(self) -> None:
        """Wait for the frames already handed over (at shutdown, before the bus closes)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
