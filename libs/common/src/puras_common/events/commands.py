"""Commands (imperative, addressed to one service) and work items.

Commands live on ``PURAS_CMDS`` and are consumed once; they are not facts, so they never
enter the event log. A command carries everything its handler needs to decide.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = ["CancelJob", "Command", "RunJob", "SubmitJob", "decode_command", "encode_command"]


class SubmitJob(msgspec.Struct, frozen=True, kw_only=True, tag="submit_job", tag_field="cmd"):
    """Admit a job the API accepted."""

    job_id: str
    project_id: str
    skill: str
    inputs: dict[str, Any]
    submitted_at: datetime
    idempotency_key: str | None = None
    after_seq: int = 0
    """Event-log sequence the gateway's deployments view had reached when it validated the
    submit; the scheduler applies at least that much before pinning (read-your-writes)."""


class CancelJob(msgspec.Struct, frozen=True, kw_only=True, tag="cancel_job", tag_field="cmd"):
    """Cancel a job (queued: at once; running: signal its runner)."""

    job_id: str
    project_id: str
    requested_at: datetime


Command = SubmitJob | CancelJob

_cmd_decoder = msgspec.json.Decoder(Command)
_encoder = msgspec.json.Encoder()


def encode_command(cmd: Command) -> bytes:
    return _encoder.encode(cmd)


def decode_command(data: bytes) -> Command:
    cmd: Command = _cmd_decoder.decode(data)
    return cmd


class RunJob(msgspec.Struct, frozen=True, kw_only=True):
    """A runnable job on ``work.<pool>``: everything a runner needs, nothing it must look up
    except the deployment's bundle (fetched by id and cached)."""

    job_id: str
    project_id: str
    skill: str
    inputs: dict[str, Any]
    deployment_id: str
    created_at: datetime
    bundle_key: str
    bundle_sha256: str
    requirements_sha256: str | None = None
    timeout_seconds: int | None = None
    queued_seq: int = 0
    """Sequence of the job's last event when it was dispatched (job.queued or
    job.released). The first attempt records its start only if nothing came after it,
    so a job cancelled while queued never runs (0: unguarded)."""
