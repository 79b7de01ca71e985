"""Venv build requests of pushed deployments, to the runners over ``PURAS_BUILDS`` (Z7).

The gateway never builds (no package code runs here): it asks, and a runner records the
outcome in the log, where the deployments view sees it.
"""

from __future__ import annotations

from puras_common.builds import BuildRequest, build_msg_id, encode_build_request
from puras_common.bus import Bus
from puras_common.events.subjects import BUILDS_STREAM, build_subject

__all__ = ["NatsBuildRequests"]


class NatsBuildRequests:
    """:class:`~puras_gateway.app.ports.BuildRequests` over JetStream."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def request(self, project_id: str, deployment_id: str) -> None:
        await self._bus.publish_raw(
            build_subject(project_id),
            encode_build_request(BuildRequest(project_id=project_id, deployment_id=deployment_id)),
            msg_id=build_msg_id(deployment_id),
            stream=BUILDS_STREAM,
        )
