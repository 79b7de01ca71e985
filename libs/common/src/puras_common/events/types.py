"""Every event type of the log, grouped by aggregate, and the unions that name them all.

Subjects are ``ev.<project>.<aggregate>.<id>`` (see :mod:`puras_common.events.subjects`).
Names are past tense; new fields get defaults; a breaking change bumps ``version`` and
registers an upcaster (:mod:`puras_common.events.upcasts`).

A fold matches on one of the unions below and ends in ``assert_never``: a new event type
added to its union makes mypy point at every fold that does not handle it yet, and
``tests/unit/common/test_event_union.py`` fails for a type left out of the unions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeAlias

import msgspec

from puras_common.events.base import Event

__all__ = [
    "TERMINAL_EVENTS",
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_STATUSES",
    "AgentEvent",
    "AgentStarted",
    "AnyEvent",
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "ApiKeySpendLimitSet",
    "BalanceDepleted",
    "BalanceRestored",
    "BilledCall",
    "BundleRef",
    "ContentBlock",
    "CreditCharged",
    "CreditGranted",
    "DeploymentActivated",
    "DeploymentBuildFailed",
    "DeploymentBuilt",
    "DeploymentCreated",
    "DeploymentDeleted",
    "DeploymentEvent",
    "DriveEvent",
    "DriveFileWritten",
    "DriveFilesDeleted",
    "DriveOrigin",
    "FeedbackEvent",
    "FileBlock",
    "JobCancelled",
    "JobCharged",
    "JobEvent",
    "JobFailed",
    "JobFeedbackGiven",
    "JobLogged",
    "JobQueued",
    "JobRecord",
    "JobReleased",
    "JobStarted",
    "JobStatus",
    "JobSucceeded",
    "JobTerminal",
    "KeyEvent",
    "LedgerEvent",
    "MediaUsageRecorded",
    "ModelResponded",
    "ModelUsage",
    "ProjectCreated",
    "ProjectPolicySet",
    "SecretDeleted",
    "SecretEvent",
    "SecretSet",
    "SkillKind",
    "SkillRecord",
    "SpendLimit",
    "SpendPeriod",
    "TextBlock",
    "ToolCalled",
    "ToolRecord",
    "ToolResulted",
    "ToolUseBlock",
    "UsageRecorded",
    "is_terminal_status",
]

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
"""The statuses a job never leaves (J3); each is the status set by one terminal event."""


def is_terminal_status(status: str) -> bool:
    """True for ``succeeded``, ``failed`` and ``cancelled``."""
    return status in TERMINAL_STATUSES


# -- project ---------------------------------------------------------------------------


class ProjectCreated(Event, frozen=True, kw_only=True):
    """An operator created a project (the unit of tenancy)."""

    type = "project.created"
    name: str
    """Human-readable name given at creation."""


class ProjectPolicySet(Event, frozen=True, kw_only=True):
    """The project changed its billing policy (it applies to jobs submitted after)."""

    type = "project.policy_set"
    stop_agents_at_zero: bool = False
    """True: a running agent job stops between steps once the balance is at or below
    zero (``credit exhausted``); False (the default): it finishes, as B3 says."""


# -- API keys (aggregate id: the key prefix) -------------------------------------------

SpendPeriod = Literal["day", "month"]
"""The window a key's spend limit counts in: a UTC calendar day or month."""


class SpendLimit(msgspec.Struct, frozen=True, kw_only=True):
    """Z1: the most the jobs submitted with one key may spend in one period."""

    micros: int
    """The limit, in micros (positive)."""
    period: SpendPeriod
    """The window it counts in."""


class ApiKeyCreated(Event, frozen=True, kw_only=True):
    """A key was issued; only the hash of its secret is ever recorded."""

    type = "key.created"
    prefix: str
    """The public part of the key, used for lookup."""
    secret_sha256: str
    """Hex sha256 of the secret part."""
    created_by: Literal["admin", "key"] = "admin"
    """Whether the operator or another key of the project created it."""
    spend_limit: SpendLimit | None = None
    """Z1: what the key's jobs may spend per period (``None``: no limit)."""


class ApiKeyRevoked(Event, frozen=True, kw_only=True):
    """A key was revoked; it fails authentication from now on."""

    type = "key.revoked"
    prefix: str
    """The revoked key's prefix."""


class ApiKeySpendLimitSet(Event, frozen=True, kw_only=True):
    """A key's spend limit was set, changed or lifted (jobs submitted after run under it)."""

    type = "key.spend_limit_set"
    prefix: str
    """The key's prefix."""
    spend_limit: SpendLimit | None
    """The new limit (``None``: lifted)."""


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
    balance_micros: int | None = None
    """The project's balance after this entry (``None`` on entries written before billing
    stamped it): the ledger's last event tells the balance without a fold."""


class BilledCall(msgspec.Struct, frozen=True, kw_only=True):
    """One billed upstream call, priced (B1): a usage row (J8)."""

    usage_id: str
    """Id of the ``job.usage`` event it prices (a charge per usage event, once)."""
    job_id: str
    """The job that made the call."""
    step: int
    """The call's step in its job (the model call's number)."""
    provider: str
    """Who served the call."""
    model: str
    """The slug it was priced by."""
    input_tokens: int = 0
    """Prompt tokens not read from the cache."""
    output_tokens: int = 0
    """Generated tokens."""
    cache_read_tokens: int = 0
    """Prompt tokens read from the provider's cache."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the provider's cache."""
    billed_micros: int
    """What the project is charged: upstream cost with the margin, rounded up (B1, B2)."""
    registry_version: str
    """The pricing registry version that priced it (the audit prices it again with it)."""
    margin_pct: int
    """The margin in effect."""
    skill: str = ""
    """The skill of the job (usage by skill, Z2; empty on calls billed before it was kept)."""
    key_prefix: str | None = None
    """The API key the job was submitted with (its spend limit, Z1)."""
    kind: Literal["model", "media"] = "model"
    """A model call (priced by its tokens) or a media generation (by its inputs, B2)."""
    media_inputs: dict[str, Any] | None = None
    """A media call's inputs as priced (the audit prices them again)."""
    media_outputs: dict[str, Any] | None = None
    """What the media upstream reported that the price reads (``inference_time``,
    ``num_outputs``)."""


class CreditCharged(Event, frozen=True, kw_only=True):
    """A billed call was debited from the project's balance (B1)."""

    type = "ledger.charged"
    call: BilledCall
    """The call and its price."""
    balance_micros: int | None = None
    """The project's balance after the charge (``None`` on charges written before billing
    stamped it)."""


class BalanceDepleted(Event, frozen=True, kw_only=True):
    """The project's balance went from above zero to zero or below (new jobs are held, J7;
    agent jobs of a project that asked for it stop between steps)."""

    type = "ledger.balance_depleted"
    balance_micros: int
    """The balance after the entry that crossed."""
    cause_id: str
    """The id of the ledger event that crossed."""


class BalanceRestored(Event, frozen=True, kw_only=True):
    """The project's balance went from zero or below to above zero (held jobs start)."""

    type = "ledger.balance_restored"
    balance_micros: int
    """The balance after the entry that crossed."""
    cause_id: str
    """The id of the ledger event that crossed."""


# -- deployments (aggregate id: the project id, one writer decision per project) --------


class BundleRef(msgspec.Struct, frozen=True, kw_only=True):
    """Where a deployment's zip is stored and how to check it."""

    key: str
    """Object key in the bundle store."""
    sha256: str
    """Hex sha256 of the zip bytes."""
    size: int
    """Size of the zip in bytes."""


SkillKind = Literal["deterministic", "agentic"]
"""How a skill runs: a Python function, or a model loop over tools."""


class ToolRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A user tool of an agentic skill, as the log records it."""

    name: str
    """The tool's name, as the model calls it."""
    description: str = ""
    """What the tool does, shown to the model."""
    entrypoint: str
    """``tools/x.py:run``, relative to the skill folder."""
    input_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    """JSON Schema of the tool's arguments."""
    output_schema: dict[str, Any] | None = None
    """JSON Schema its result must match; ``None``: any result."""


class SkillRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One skill of a deployment, as the log records it.

    The log's own type, so that the manifest validator can change without changing the
    log; its JSON is the validated ``skill.yaml`` (``puras_common.manifest.SkillSpec``).
    """

    name: str
    """The folder name under ``skills/``."""
    kind: SkillKind
    """Decided by the entrypoint: ``.md`` is agentic, ``file.py:func`` deterministic."""
    entrypoint: str
    """``file.py:func`` of a deterministic skill, the markdown file of an agentic one."""
    description: str = ""
    """What the skill does, for people and for listings."""
    model: str | None = None
    """Model slug of an agentic skill (``None``: the platform default)."""
    disable_bash: bool = False
    """True when an agentic skill may not use the built-in bash tool."""
    input_schema: dict[str, Any] | None = None
    """JSON Schema the inputs must match; ``None``: any inputs."""
    output_schema: dict[str, Any] | None = None
    """JSON Schema the result must match; ``None``: any result."""
    tools: list[ToolRecord] = msgspec.field(default_factory=list)
    """User tools of an agentic skill."""
    timeout_seconds: int | None = None
    """Wall-clock limit of one run; ``None`` takes the runner's default."""
    max_steps: int | None = None
    """Most model calls of one agentic run; ``None`` takes the runner's default."""
    max_cost_micros: int | None = None
    """Z1: the most one job of the skill may spend, in micros, unless its submit says
    otherwise (``None``: no cap)."""


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
    skills: list[SkillRecord]
    """Every discovered skill, validated."""
    build: bool = False
    """Z7: its venv is built by a runner before it can be activated (``deployment.built``
    or ``deployment.build_failed`` follows). ``False`` (no ``requirements.txt``, or a
    deployment recorded before push-time builds) is ready at once."""
    activate_when_built: bool = False
    """The push asked for activation: whoever records a successful build activates it,
    unless another deployment was activated after it was created."""


class DeploymentBuilt(Event, frozen=True, kw_only=True):
    """A runner built (or already held) the deployment's venv: it may be activated."""

    type = "deployment.built"
    deployment_id: str
    """The deployment built."""
    venv_key: str
    """The venv's key (the sha256 of ``requirements.txt``)."""
    reused: bool = False
    """The venv existed already (another deployment with the same file): nothing was built."""


class DeploymentBuildFailed(Event, frozen=True, kw_only=True):
    """A deployment's venv could not be built: it is never activated."""

    type = "deployment.build_failed"
    deployment_id: str
    """The deployment whose build failed."""
    error: str
    """What went wrong, with uv's output (host paths removed)."""


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
    """A job as the API shows it (JobOut, J2): the fold of the job's events, never logged."""

    id: str
    """The job's id (a UUID), also the aggregate id of its events."""
    project_id: str
    """The project the job belongs to."""
    skill: str
    """The skill the job runs."""
    status: JobStatus
    """Where the job is in its lifecycle (J3)."""
    inputs: dict[str, Any]
    """Inputs as submitted."""
    result: dict[str, Any] | None = None
    """The skill's result, once succeeded."""
    error: str | None = None
    """Why it failed, once failed."""
    cost_micros: int = 0
    """What the job has cost so far, in micros (J8)."""
    deployment_id: str | None = None
    """The deployment the job is pinned to (``None``: it failed admission without one)."""
    attempts: int = 0
    """Deliveries to a runner so far (J11)."""
    created_at: datetime
    """When the API accepted the job."""
    started_at: datetime | None = None
    """When the job (or the attempt that ended it) began running."""
    finished_at: datetime | None = None
    """When it reached its terminal status."""
    held_reason: str | None = None
    """Why a ``queued`` job is not running yet (waiting for credit, J7/Z8); else ``None``."""


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
    key_prefix: str | None = None
    """The API key the job was submitted with (``None``: before keys were recorded)."""


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
    """The job ended with a valid result.

    Version 1 carried the whole final job; the job view is now folded from the facts
    (upcast in :mod:`puras_common.events.upcasts`).
    """

    type = "job.succeeded"
    version = 2
    result: dict[str, Any]
    """The skill's result (it matched the skill's ``output_schema``)."""
    attempt: int
    """The attempt that produced it (1-based)."""
    started_at: datetime | None = None
    """When that attempt began (``None``: as the job's ``job.started`` events say)."""
    finished_at: datetime
    """When the job ended."""


class JobFailed(Event, frozen=True, kw_only=True):
    """The job ended with an error (its own, its input's, or a lost runner's).

    Version 1 carried the whole final job (upcast in :mod:`puras_common.events.upcasts`).
    """

    type = "job.failed"
    version = 2
    error: str
    """Why it failed, as the API shows it."""
    attempt: int = 0
    """Deliveries to a runner when it failed (0: it failed before any, at admission)."""
    started_at: datetime | None = None
    """When the failed attempt began (``None``: as the job's ``job.started`` events say)."""
    finished_at: datetime
    """When the job ended."""


class JobCancelled(Event, frozen=True, kw_only=True):
    """The job was cancelled.

    Version 1 carried the whole final job (upcast in :mod:`puras_common.events.upcasts`).
    """

    type = "job.cancelled"
    version = 2
    finished_at: datetime
    """When the cancel was recorded."""


# -- agent runs (on the job's subject, between its start and its end) -------------------


class TextBlock(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="text"):
    """Text in a model response or a tool result."""

    text: str
    """The text."""


class ToolUseBlock(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="tool_use"):
    """A tool call in a model response."""

    id: str
    """The call's id, as the provider named it (a tool result answers it)."""
    name: str
    """The tool called."""
    input: dict[str, Any]
    """Its arguments."""


class FileBlock(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="file"):
    """An image or a PDF put before the model (an attachment, a ``file_read`` result).

    Recorded by reference, never by content: the log keeps what the model was shown,
    and a resumed run reads the bytes again from where they came from.
    """

    kind: Literal["image", "document"]
    """``image`` (a vision block) or ``document`` (a PDF block)."""
    media_type: str
    """``image/png``, ``application/pdf`` ..."""
    drive_path: str | None = None
    """Where in the project's drive the bytes are (``None``: not from the drive)."""
    url: str | None = None
    """The URL the model was given instead of the bytes (image and PDF URLs, A6)."""
    base64_index: int | None = None
    """Which entry of ``inputs.attachments`` holds the bytes (an inline attachment)."""
    size: int = 0
    """Bytes of the file (0: unknown, a URL)."""
    sha256: str = ""
    """Hex sha256 of the bytes shown (empty for a URL)."""


ContentBlock: TypeAlias = TextBlock | ToolUseBlock | FileBlock
"""One block of a model response or of a tool result."""


class ModelUsage(msgspec.Struct, frozen=True, kw_only=True):
    """Tokens one model call used, as the provider reported them."""

    input_tokens: int = 0
    """Prompt tokens not read from the provider's cache."""
    output_tokens: int = 0
    """Generated tokens."""
    cache_read_tokens: int = 0
    """Prompt tokens read from the provider's prompt cache."""
    cache_write_tokens: int = 0
    """Prompt tokens written to the provider's prompt cache."""


class AgentStarted(Event, frozen=True, kw_only=True):
    """An agent run began (its first attempt; a resumed attempt records none)."""

    type = "job.agent_start"
    model: str
    """The model slug the run uses (the platform default when the skill names none)."""
    provider: str
    """Which upstream serves it (``anthropic``, ``openai`` ...), from configuration."""
    upstream_model: str
    """The provider's own model id."""
    tools: list[str]
    """The tools offered to the model, by name."""
    max_steps: int
    """The most model calls the run may make."""
    attempt: int = 1
    """The attempt that started the run."""


class ModelResponded(Event, frozen=True, kw_only=True):
    """The model answered one step of the run (the whole response, never deltas)."""

    type = "job.model_response"
    step: int
    """1-based: the n-th model call of the run."""
    content: list[ContentBlock]
    """Its text and tool calls, in order."""
    stop_reason: str
    """``end_turn``, ``tool_use``, ``max_tokens`` or the provider's own reason."""
    usage: ModelUsage
    """Tokens the call used."""
    attempt: int = 1
    """The attempt that made the call."""


class ToolCalled(Event, frozen=True, kw_only=True):
    """The run is executing one tool call of a model response."""

    type = "job.tool_call"
    step: int
    """The step whose response asked for the call."""
    call_id: str
    """The call's id in that response."""
    name: str
    """The tool."""
    input: dict[str, Any]
    """Its arguments, as the model gave them."""


class ToolResulted(Event, frozen=True, kw_only=True):
    """A tool call's result, as the model is shown it (capped, secrets masked)."""

    type = "job.tool_result"
    step: int
    """The step whose response asked for the call."""
    call_id: str
    """The call answered."""
    name: str
    """The tool."""
    content: list[ContentBlock]
    """What the model is shown: text, and images or PDFs by reference."""
    is_error: bool = False
    """True when the call failed (the model sees the error and may go on)."""


class UsageRecorded(Event, frozen=True, kw_only=True):
    """One billable upstream call: what billing prices (B1)."""

    type = "job.usage"
    step: int
    """The model call's step."""
    provider: str
    """Who served the call."""
    model: str
    """The model slug (prices are per slug)."""
    upstream_model: str
    """The provider's own model id."""
    usage: ModelUsage
    """Its tokens."""
    skill: str = ""
    """The job's skill (usage rows by skill, Z2)."""
    key_prefix: str | None = None
    """The API key the job was submitted with (its spend limit, Z1)."""


class MediaUsageRecorded(Event, frozen=True, kw_only=True):
    """One successful media generation of a job: what billing prices by the slug's shape
    (per call, per second, per megapixel, or an input-conditional row; B2)."""

    type = "job.media_usage"
    call: int
    """1-based: the n-th media call of the job."""
    provider: str
    """Who served it."""
    model: str
    """The media slug (prices are per slug)."""
    upstream_model: str = ""
    """The upstream's own model id."""
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    """The inputs the price depends on, as sent (quality, size, duration, audio ...;
    never file contents)."""
    outputs: dict[str, Any] = msgspec.field(default_factory=dict)
    """What the upstream reported that prices read: ``inference_time`` (seconds) and
    ``num_outputs``."""
    request_id: str = ""
    """The upstream's id of the request."""
    skill: str = ""
    """The job's skill."""
    key_prefix: str | None = None
    """The API key the job was submitted with (its spend limit, Z1)."""


class JobCharged(Event, frozen=True, kw_only=True):
    """A call of the job was billed (J5 ``cost``): the job's cost grows by it (J8)."""

    type = "job.cost"
    call: BilledCall
    """The call and its price (the same as the ledger's charge)."""


# -- drive -------------------------------------------------------------------------------


class DriveOrigin(msgspec.Struct, frozen=True, kw_only=True):
    """Which job wrote a drive file (D7)."""

    job_id: str
    """The job."""
    skill: str
    """The job's skill."""
    tool: str | None = None
    """What in the job wrote it: ``media``, ``download_url``, ``bash``, a user tool's
    name, or ``None`` for the skill's own code (a deterministic ``run``)."""


class DriveFileWritten(Event, frozen=True, kw_only=True):
    """A file of the project's drive was written whole (created or replaced); subject
    ``ev.<project>.drive.<project>``."""

    type = "drive.file_written"
    path: str
    """The canonical drive path (:mod:`puras_common.drive_paths`)."""
    bytes: int
    """Its size."""
    sha256: str
    """Hex digest of the content ("" where the writer did not hash it)."""
    content_type: str
    """Sniffed from the content, else from the name."""
    origin: DriveOrigin | None = None
    """The job that wrote it; ``None`` for an upload through the API."""


class DriveFilesDeleted(Event, frozen=True, kw_only=True):
    """Files of the project's drive were deleted: ``paths`` one by one, or everything
    under ``prefix`` (a folder; ``""`` the whole drive)."""

    type = "drive.files_deleted"
    paths: list[str] = msgspec.field(default_factory=list)
    """Files deleted one by one (canonical paths)."""
    prefix: str | None = None
    """A folder (``a/b/``) whose every file went, or ``None``."""
    deleted: int = 0
    """How many files storage removed."""
    origin: DriveOrigin | None = None
    """The job that deleted them; ``None`` for the API."""


# -- feedback (aggregate id: the job id) -----------------------------------------------


class JobFeedbackGiven(Event, frozen=True, kw_only=True):
    """Someone rated a job's result (J9); subject ``ev.<project>.feedback.<job>``.

    Its own aggregate, not the job's: feedback comes after the job ended and is no part
    of its run (its events, its stream, its fold), and the gateway writes it while job
    facts come only from the scheduler, the runners and billing. The latest event of an
    ``(job, end_user_id)`` pair is that pair's feedback (J9's upsert).
    """

    type = "feedback.given"
    end_user_id: str
    """Who gave it, as the project's own frontend names its users ("" anonymous)."""
    rating: int
    """-1 (thumbs down), 0 (no thumb, a comment only) or 1 (thumbs up)."""
    comment: str = ""
    """Free text, capped by the gateway."""


# -- secrets (aggregate id: the secret's name) ------------------------------------------


class SecretSet(Event, frozen=True, kw_only=True):
    """A project secret was created or overwritten (X1); subject
    ``ev.<project>.secret.<name>``, so the last event of a subject is that secret.

    Only the ciphertext is recorded: the value is sealed with AES-GCM under the
    operator's master key, the project id and the name as associated data
    (:mod:`puras_common.secret_box`), and only the gateway and the runners can open it.
    """

    type = "secret.set"
    name: str
    """The secret's name (``^[A-Z_][A-Z0-9_]*$``, the env var jobs see)."""
    key_id: str
    """Which master key sealed it (a rotation re-seals under the new one)."""
    ciphertext: str
    """Nonce, sealed value and tag, base64url without padding."""
    rotated: bool = False
    """True: the same value re-sealed under a new master key (its ``updated_at`` stays)."""


class SecretDeleted(Event, frozen=True, kw_only=True):
    """A project secret was deleted; jobs started after it no longer see it."""

    type = "secret.deleted"
    name: str
    """The deleted secret's name."""


# -- the unions --------------------------------------------------------------------------

KeyEvent: TypeAlias = (
    ProjectCreated | ProjectPolicySet | ApiKeyCreated | ApiKeyRevoked | ApiKeySpendLimitSet
)
"""Events of the ``project`` and ``key`` aggregates (the keys view)."""
LedgerEvent: TypeAlias = CreditGranted | CreditCharged | BalanceDepleted | BalanceRestored
"""Events of the ``ledger`` aggregate."""
DeploymentEvent: TypeAlias = (
    DeploymentCreated
    | DeploymentBuilt
    | DeploymentBuildFailed
    | DeploymentActivated
    | DeploymentDeleted
)
"""Events of the ``deployments`` aggregate."""
JobTerminal: TypeAlias = JobSucceeded | JobFailed | JobCancelled
"""The events that end a job: one per job, each setting one of ``TERMINAL_STATUSES``."""
AgentEvent: TypeAlias = AgentStarted | ModelResponded | ToolCalled | ToolResulted | UsageRecorded
"""What an agent run records on its job's subject (A10)."""
JobEvent: TypeAlias = (
    JobQueued
    | JobReleased
    | JobStarted
    | JobLogged
    | AgentEvent
    | MediaUsageRecorded
    | JobCharged
    | JobTerminal
)
"""Events of the ``job`` aggregate."""
DriveEvent: TypeAlias = DriveFileWritten | DriveFilesDeleted
"""Events of the ``drive`` aggregate (one per project)."""
FeedbackEvent: TypeAlias = JobFeedbackGiven
"""Events of the ``feedback`` aggregate (one per job)."""
SecretEvent: TypeAlias = SecretSet | SecretDeleted
"""Events of the ``secret`` aggregate (one per secret name of a project)."""
AnyEvent: TypeAlias = (
    KeyEvent | LedgerEvent | DeploymentEvent | JobEvent | DriveEvent | FeedbackEvent | SecretEvent
)
"""Every event type of the log; what :func:`puras_common.events.decode_event` returns."""

TERMINAL_EVENTS: tuple[type[JobTerminal], ...] = (JobSucceeded, JobFailed, JobCancelled)
"""The terminal event classes, for ``isinstance`` where a union cannot be used."""
TERMINAL_EVENT_TYPES: frozenset[str] = frozenset(cls.type for cls in TERMINAL_EVENTS)
"""Their type tags (``job.succeeded`` ...), to recognise an end without decoding it."""
