"""Push-time venv builds (Z7): the requests (gateway -> runners) and their outcomes
(runner -> gateways), each on a work queue.

The gateway publishes a request per deployment with a ``requirements.txt`` on
``PURAS_BUILDS``; any runner takes it, builds (or finds) the venv, reports the outcome on
``PURAS_CMDS`` (``cmd.gateway.built.<project>``) and only then acks. A gateway takes the
outcome, records ``deployment.built`` or ``deployment.build_failed`` and the activation
the push asked for on the project's deployments subject, and only then acks. Deployment
facts keep one writer, the gateway, and a runner never holds the right to append them.
Every step is redelivered after a crash and decides nothing twice (the fold says what is
recorded already; the outcome's message id and the events' ids deduplicate).
"""

from __future__ import annotations

import msgspec

__all__ = [
    "BuildOutcome",
    "BuildRequest",
    "build_msg_id",
    "build_outcome_msg_id",
    "decode_build_outcome",
    "decode_build_request",
    "encode_build_outcome",
    "encode_build_request",
]


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


class BuildOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What a runner's build of ``deployment_id`` came to: ``error`` is ``None`` when
    the venv is ready (``reused``: it existed, nothing was built), else uv's message
    with no host path in it."""

    project_id: str
    deployment_id: str
    venv_key: str
    error: str | None = None
    reused: bool = False


def build_outcome_msg_id(deployment_id: str) -> str:
    """One outcome per deployment within the stream's duplicate window (a redelivered
    request that builds again reports nothing new)."""
    return f"built:{deployment_id}"


def encode_build_outcome(outcome: BuildOutcome) -> bytes:
    return msgspec.json.encode(outcome)


def decode_build_outcome(data: bytes) -> BuildOutcome:
    """Raises ``msgspec.DecodeError`` or ``msgspec.ValidationError`` for a malformed one."""
    return msgspec.json.decode(data, type=BuildOutcome)
