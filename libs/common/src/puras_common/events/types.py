"""Every event type of the log, grouped by aggregate.

Subjects are ``ev.<project>.<aggregate>.<id>`` (see :mod:`puras_common.events.subjects`).
Names are past tense; new fields get defaults; a breaking change bumps ``version`` and
registers an upcaster in this package.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from puras_common.events.base import Event
from puras_common.manifest.spec import SkillSpec

__all__ = [
    "TERMINAL_STATUSES",
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "BundleRef",
    "CreditGranted",
    "DeploymentActivated",
    "DeploymentCreated",
    "DeploymentDeleted",
    "JobCancelled",
    "JobFailed",
    "JobLogged",
    "JobQueued",
    "JobRecord",
    "JobReleased",
    "JobStarted",
    "JobStatus",
    "JobSucceeded",
    "ProjectCreated",
]

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


# -- project ---------------------------------------------------------------------------


class ProjectCreated(Event, frozen=True, kw_only=True):
    """An operator created a project (the unit of tenancy)."""

    type = "project.created"
    name: str
    """Human-readable name given at creation."""


# -- API keys (aggregate id: the key prefix) -------------------------------------------


class ApiKeyCreated(Event, frozen=True, kw_only=True):
    """A key was issued; only the hash of its secret is ever recorded."""

    type = "key.created"
    prefix: str
    """The public part of the key, used for lookup."""
    secret_sha256: str
    """Hex sha256 of the secret part."""
    created_by: Literal["admin", "key"] = "admin"
    """Whether the operator or another key of the project created it."""


class ApiKeyRevoked(Event, frozen=True, kw_only=True):
    """A key was revoked; it fails authentication from now on."""

    type = "key.revoked"
    prefix: str
    """The revoked key's prefix."""


# -- ledger (aggregate id: the project id) ---------------------------------------------


class CreditGranted(Event, frozen=True, kw_only=True):
    """An operator added credit to a project's balance."""

    type = "ledger.credit_granted"
    grant_id: str
    """Id of the grant (idempotency of the admin call)."""
    micros: int
    """Amount in micros (1 USD = 1,000,000); may be negative for a correction."""
    note: str = ""
    """Free text from the operator."""


# -- deployments (aggregate id: the project id, one writer decision per project) --------


class BundleRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where a deployment's zip is stored and how to check it."""

    key: str
    """Object key in the bundle store."""
    sha256: str
    """Hex sha256 of the zip bytes."""
    size: int
    """Size of the zip in bytes."""


class DeploymentCreated(Event, frozen=True, kw_only=True):
    """A validated bundle became an immutable deployment."""

    type = "deployment.created"
    deployment_id: str
    """Id of the new deployment."""
    notes: str
    """The pusher's notes."""
    bundle: BundleRef
    """The stored zip."""
    requirements_sha256: str | None
    """Hash of ``requirements.txt`` (keys the runner's venv cache), ``None`` without one."""
    skills: list[SkillSpec]
    """Every discovered skill, validated."""


class DeploymentActivated(Event, frozen=True, kw_only=True):
    """New jobs of the project now run on this deployment."""

    type = "deployment.activated"
    deployment_id: str
    """The deployment now active."""
    previous_id: str | None = None
    """The deployment active before, if any."""


class DeploymentDeleted(Event, frozen=True, kw_only=True):
    """A deployment that was not active was deleted."""

    type = "deployment.deleted"
    deployment_id: str
    """The deleted deployment."""


# -- jobs (aggregate id: the job id) ---------------------------------------------------


class JobRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A job as the API shows it (JobOut); carried whole by terminal events."""

    id: str
    project_id: str
    skill: str
    status: JobStatus
    inputs: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
    cost_micros: int = 0
    deployment_id: str | None = None
    attempts: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobQueued(Event, frozen=True, kw_only=True):
    """The scheduler admitted a job and pinned its deployment."""

    type = "job.queued"
    skill: str
    """Skill name."""
    inputs: dict[str, Any]
    """Inputs as submitted."""
    deployment_id: str | None
    """The pinned deployment (``None`` only when the job fails admission without one)."""
    created_at: datetime
    """When the API accepted the job."""
    held: bool = False
    """True while the job waits for credit instead of being dispatched."""


class JobReleased(Event, frozen=True, kw_only=True):
    """A job held for credit was dispatched to the runners."""

    type = "job.released"


class JobStarted(Event, frozen=True, kw_only=True):
    """A runner began an attempt."""

    type = "job.started"
    attempt: int
    """1-based delivery count of the work item."""
    deployment_id: str
    """The deployment the attempt runs."""
    runner_id: str
    """Which runner took it."""
    started_at: datetime
    """When the attempt began."""


class JobLogged(Event, frozen=True, kw_only=True):
    """Lines a deterministic job wrote to stdout or stderr."""

    type = "job.log"
    stream: Literal["stdout", "stderr"]
    """Which stream the lines came from."""
    lines: list[str]
    """The lines, in order, without their newline."""
    truncated: bool = False
    """True on the last log event when output beyond the cap was dropped."""


class JobSucceeded(Event, frozen=True, kw_only=True):
    """The job ended with a valid result."""

    type = "job.succeeded"
    job: JobRecord
    """The final job."""


class JobFailed(Event, frozen=True, kw_only=True):
    """The job ended with an error (its own, its input's, or a lost runner's)."""

    type = "job.failed"
    job: JobRecord
    """The final job; ``job.error`` says why."""


class JobCancelled(Event, frozen=True, kw_only=True):
    """The job was cancelled."""

    type = "job.cancelled"
    job: JobRecord
    """The final job."""
