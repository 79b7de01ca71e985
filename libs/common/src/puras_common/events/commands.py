"""Commands (imperative, addressed to one service) and work items.

Commands live on ``PURAS_CMDS`` and are consumed once; they are not facts, so they never
enter the event log. A command carries everything its handler needs to decide.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from puras_common.events.types import SpendLimit

__all__ = [
    "CancelJob",
    "Command",
    "GrantCredit",
    "RunJob",
    "SubmitJob",
    "decode_command",
    "encode_command",
]


class SubmitJob(msgspec.Struct, frozen=True, kw_only=True, tag="submit_job", tag_field="cmd"):
    """Admit a job the API accepted."""

    job_id: str
    """Id the API gave the job (also the command's message id: a retried submit is one)."""
    project_id: str
    """The project submitting it."""
    skill: str
    """The skill to run."""
    inputs: dict[str, Any]
    """Inputs as submitted."""
    submitted_at: datetime
    """When the API accepted the job (its ``created_at``)."""
    max_cost_micros: int | None = None
    """Z1: the most the job may spend, in micros (``None``: its skill's default, if any)."""
    key_prefix: str | None = None
    """The API key that submitted it."""
    spend_limit: SpendLimit | None = None
    """Z1: that key's spend limit when the job was submitted (``None``: none)."""
    stop_agents_at_zero: bool = False
    """The project's policy when the job was submitted: an agent run stops between steps
    once the balance is at or below zero."""
    idempotency_key: str | None = None
    """The request's ``Idempotency-Key`` (J10), if it had one."""
    deployment_id: str | None = None
    """The active deployment the gateway validated the submit against (the scheduler pins
    its own); a read before admission shows it."""
    after_seq: int = 0
    """Event-log sequence the gateway's deployments view had reached when it validated the
    submit; the scheduler applies at least that much before pinning (read-your-writes)."""


class CancelJob(msgspec.Struct, frozen=True, kw_only=True, tag="cancel_job", tag_field="cmd"):
    """Cancel a job (queued: at once; running: signal its runner)."""

    job_id: str
    """The job to cancel."""
    project_id: str
    """The project it belongs to (checked against the job's events)."""
    requested_at: datetime
    """When the API received the cancel."""


class GrantCredit(msgspec.Struct, frozen=True, kw_only=True, tag="grant_credit", tag_field="cmd"):
    """Add credit to a project (B4): billing, the ledger's one writer, records it."""

    grant_id: str
    """Id the API gave the grant; its ledger event is ``grant:<grant id>``, so a command
    delivered twice grants once."""
    project_id: str
    """The project credited."""
    micros: int
    """The amount, positive, in micro-USD."""
    note: str = ""
    """The operator's note, kept on the ledger entry."""


Command = SubmitJob | CancelJob | GrantCredit
"""Every command, a msgspec tagged union on ``cmd``."""

_cmd_decoder = msgspec.json.Decoder(Command)
_encoder = msgspec.json.Encoder()


def encode_command(cmd: Command) -> bytes:
    """The bytes published on ``PURAS_CMDS`` (tagged by ``cmd``)."""
    return _encoder.encode(cmd)


def decode_command(data: bytes) -> Command:
    """The command in ``data``; raises ``msgspec.DecodeError`` for anything else."""
    cmd: Command = _cmd_decoder.decode(data)
    return cmd


class RunJob(msgspec.Struct, frozen=True, kw_only=True):
    """A runnable job on ``work.<pool>``: everything a runner needs, nothing it must look up
    except the deployment's bundle (fetched by id and cached)."""

    job_id: str
    """The job to run."""
    project_id: str
    """The project it belongs to (its secrets, its subject)."""
    skill: str
    """The skill to run."""
    inputs: dict[str, Any]
    """Inputs as submitted."""
    deployment_id: str
    """The deployment the job was pinned to at admission."""
    created_at: datetime
    """When the API accepted the job."""
    bundle_key: str
    """Object key of the deployment's zip in the bundle store."""
    bundle_sha256: str
    """Hex sha256 the fetched zip must have."""
    requirements_sha256: str | None = None
    """Hash of the deployment's ``requirements.txt`` (keys the venv cache); ``None``: none."""
    timeout_seconds: int | None = None
    """Wall-clock limit from the skill (``None``: the runner's default)."""
    max_cost_micros: int | None = None
    """Z1: the most the job may spend, in micros: the submit's cap, else the skill's
    (``None``: no cap)."""
    key_prefix: str | None = None
    """The API key that submitted the job (its usage is counted against the key)."""
    spend_limit: SpendLimit | None = None
    """Z1: the key's spend limit as the job was submitted (``None``: none)."""
    stop_agents_at_zero: bool = False
    """Stop an agent run between steps once the project's balance is at or below zero."""
    queued_seq: int = 0
    """Sequence of the job's last event when it was dispatched (job.queued or
    job.released). The first attempt records its start only if nothing came after it,
    so a job cancelled while queued never runs (0: unguarded, or see ``queued_pending``)."""
    queued_pending: bool = False
    """The scheduler published job.queued alongside this work item instead of before
    it (no round trip between them), so ``queued_seq`` is unknown: the runner reads
    job.queued's sequence from the log, waiting for it to be stored, and starts on it as
    on ``queued_seq``."""
