"""A deployment's ``DeploymentCreated``, read from the event log over JetStream.

The gateway appends every deployment event of a project to one subject,
``ev.<project>.deployments.<project>``, so the runner walks that subject from its start
with direct gets (one round trip per event, no consumer) until it meets the deployment's
creation. It does so once per deployment and runner process (the bundle cache keeps the
result), on the deployment's first job, next to the bundle download and venv build that
job pays for anyway.
"""

from __future__ import annotations

from typing import Final

from nats.js.errors import NotFoundError

from puras_common.bus import Bus
from puras_common.events.base import DecodeError, decode_envelope, decode_event
from puras_common.events.subjects import AGG_DEPLOYMENTS, EVENTS_STREAM, event_subject
from puras_common.events.types import DeploymentCreated
from puras_common.logging import get_logger

__all__ = ["NatsDeploymentLog"]

log = get_logger(__name__)

MAX_WALK: Final = 100_000
"""Events read on a project's deployments subject before giving up (a bound, not a
limit any project reaches: each push appends two)."""


class NatsDeploymentLog:
    """:class:`~puras_runner.app.ports.DeploymentLog` over ``PURAS_EVENTS``."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def created(self, project_id: str, deployment_id: str) -> DeploymentCreated | None:
        subject = event_subject(project_id, AGG_DEPLOYMENTS, project_id)
        seq = 1
        for _ in range(MAX_WALK):
            try:
                raw = await self._bus.js.get_msg(
                    EVENTS_STREAM, seq=seq, subject=subject, next=True, direct=True
                )
            except NotFoundError:
                return None
            seq = int(raw.seq or seq) + 1
            try:
                env = decode_envelope(raw.data or b"")
                if env.type != DeploymentCreated.type:
                    continue
                event = decode_event(env)
            except DecodeError as exc:
                log.warning("undecodable deployment event skipped", seq=raw.seq, error=str(exc))
                continue
            if isinstance(event, DeploymentCreated) and event.deployment_id == deployment_id:
                return event
        return None
