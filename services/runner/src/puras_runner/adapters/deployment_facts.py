"""A project's deployments, folded from the event log, and the build outcomes appended there.

The build of a pushed deployment (Z7) records ``deployment.built`` or
``deployment.build_failed`` on the project's deployments subject, and then the activation
the push asked for. Each decision is made on the subject as this fold saw it and appended
with that sequence as the expected one, so a concurrent push or rollback through the
gateway is never overwritten: the append fails, the subject is folded again, the decision
made again.
"""

from __future__ import annotations

from typing import Final

from nats.js.errors import NotFoundError

from puras_common.bus import Bus
from puras_common.events.base import DecodeError, Event, decode_envelope, decode_event
from puras_common.events.recorded import RecordedEvent
from puras_common.events.subjects import AGG_DEPLOYMENTS, EVENTS_STREAM, event_subject
from puras_common.logging import get_logger
from puras_common.views.deployments import DeploymentsView, ProjectDeployments

__all__ = ["NatsDeploymentFacts"]

log = get_logger(__name__)

MAX_WALK: Final = 100_000
"""Events read on a project's deployments subject at most (a bound no project reaches)."""


class NatsDeploymentFacts:
    """:class:`~puras_runner.app.ports.DeploymentFacts` over ``PURAS_EVENTS``."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def fold(self, project_id: str) -> ProjectDeployments:
        subject = event_subject(project_id, AGG_DEPLOYMENTS, project_id)
        view = DeploymentsView()
        seq = 1
        for _ in range(MAX_WALK):
            try:
                raw = await self._bus.js.get_msg(
                    EVENTS_STREAM, seq=seq, subject=subject, next=True, direct=True
                )
            except NotFoundError:
                break
            seq = int(raw.seq or seq) + 1
            try:
                env = decode_envelope(raw.data or b"")
                event = decode_event(env)
            except DecodeError as exc:
                log.warning("undecodable deployment event skipped", seq=raw.seq, error=str(exc))
                continue
            view.apply(
                RecordedEvent(seq=int(raw.seq or 0), subject=subject, envelope=env, event=event)
            )
        return view.project(project_id)

    async def append(
        self, event: Event, *, project_id: str, event_id: str, expected_seq: int
    ) -> int:
        published = await self._bus.append(
            event,
            project_id=project_id,
            aggregate=AGG_DEPLOYMENTS,
            aggregate_id=project_id,
            event_id=event_id,
            expected_last_subject_seq=expected_seq,
        )
        return int(published.seq)
