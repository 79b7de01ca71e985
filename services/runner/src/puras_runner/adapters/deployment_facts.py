"""A project's deployments, folded from the event log, and build outcomes reported to the
gateways (Z7).

The runner only reads deployment facts: a build's outcome goes to the gateways as a
message on ``PURAS_CMDS`` (``cmd.gateway.built.<project>``), and a gateway records it.
"""

from __future__ import annotations

from typing import Final

from nats.js.errors import NotFoundError

from puras_common.builds import BuildOutcome, build_outcome_msg_id, encode_build_outcome
from puras_common.bus import Bus
from puras_common.events.base import DecodeError, decode_envelope, decode_event
from puras_common.events.recorded import RecordedEvent
from puras_common.events.subjects import (
    AGG_DEPLOYMENTS,
    CMDS_STREAM,
    EVENTS_STREAM,
    built_subject,
    event_subject,
)
from puras_common.logging import get_logger
from puras_common.views.deployments import DeploymentsView, ProjectDeployments

__all__ = ["NatsBuildOutcomes", "NatsDeploymentFacts"]

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


class NatsBuildOutcomes:
    """:class:`~puras_runner.app.builds.BuildOutcomes` over ``PURAS_CMDS``."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def report(self, outcome: BuildOutcome) -> None:
        await self._bus.publish_raw(
            built_subject(outcome.project_id),
            encode_build_outcome(outcome),
            msg_id=build_outcome_msg_id(outcome.deployment_id),
            stream=CMDS_STREAM,
        )
