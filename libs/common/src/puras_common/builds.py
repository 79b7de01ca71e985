"""Venv build requests of pushed deployments (Z7), on the ``PURAS_BUILDS`` work queue.

The gateway publishes one per deployment with a ``requirements.txt``; any runner takes
it, builds (or finds) the venv, records the outcome on the project's deployments subject
and only then acks. A request redelivered after a crash records the same outcome again
(deduplicated by event id), so a push that asked for activation is never left behind.
"""

from __future__ import annotations

import msgspec

__all__ = ["BuildRequest", "build_msg_id", "decode_build_request", "encode_build_request"]


class BuildRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Build the venv of ``deployment_id`` (its ``deployment.created`` says the rest)."""

    project_id: str
    deployment_id: str


def build_msg_id(deployment_id: str) -> str:
    """One request per deployment within the stream's duplicate window."""
    return f"build:{deployment_id}"


def encode_build_request(req: BuildRequest) -> bytes:
    return msgspec.json.encode(req)


def decode_build_request(data: bytes) -> BuildRequest:
    """Raises ``msgspec.DecodeError`` or ``msgspec.ValidationError`` for a malformed one."""
    return msgspec.json.decode(data, type=BuildRequest)
