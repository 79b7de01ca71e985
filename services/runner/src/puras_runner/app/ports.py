"""What the runner's handlers need from the outside world, as protocols.

Real implementations live in :mod:`puras_runner.adapters`; unit tests pass fakes. The
pieces every engine shares (the deployment's files, the job's event log, secrets) are
here next to the engines' own port (:class:`ProcessEngine` for deterministic skills).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from puras_common.events.base import Event
from puras_common.events.commands import RunJob
from puras_common.events.types import (
    DeploymentCreated,
    JobStarted,
    SkillRecord,
    SpendLimit,
    ToolRecord,
)
from puras_common.spend import Refused
from puras_runner.domain.agent.conversation import ModelReply, ModelRequest, ModelRoute, OnText
from puras_runner.domain.logs import Stream
from puras_runner.domain.outcome import RunFacts

__all__ = [
    "Balances",
    "BashResult",
    "Deployment",
    "DeploymentLog",
    "Deployments",
    "DriveFile",
    "Fetched",
    "Fetcher",
    "JobEventLog",
    "LastEvent",
    "LiveFeed",
    "ModelClient",
    "ModelClients",
    "OutputSink",
    "ProcessEngine",
    "Running",
    "SandboxSession",
    "Sandboxes",
    "Search",
    "SecretsProvider",
    "SpendBook",
    "ToolCallResult",
    "Watch",
    "WorkMessage",
    "WorkSource",
]

OutputSink = Callable[[Stream, bytes], None]


class WorkMessage(Protocol):
    """One delivery of a work item."""

    @property
    def data(self) -> bytes: ...

    @property
    def headers(self) -> Mapping[str, str] | None: ...

    @property
    def attempt(self) -> int:
        """1-based delivery count (JetStream's ``num_delivered``)."""
        ...

    async def ack(self) -> None: ...

    async def nak(self, delay: float | None = None) -> None: ...

    async def term(self) -> None: ...

    async def in_progress(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LastEvent:
    seq: int
    type: str


class Watch(Protocol):
    async def close(self) -> None: ...


class JobEventLog(Protocol):
    """The job's subject ``ev.<project>.job.<id>`` in the event log."""

    async def append(
        self, event: Event, *, job: RunJob, event_id: str, expected_seq: int | None
    ) -> int:
        """Append; returns the stored sequence. Raises ``ConcurrencyConflict`` when the
        subject's last sequence is not ``expected_seq`` (``None``: no check)."""
        ...

    async def last(self, job: RunJob) -> LastEvent | None:
        """The job's last event (``None``: it has none)."""
        ...

    async def latest_started(self, job: RunJob) -> JobStarted | None:
        """The job's most recent ``JobStarted`` (``None``: it never started)."""
        ...

    async def since(self, job: RunJob, seq: int) -> list[LastEvent]:
        """The job's events stored after sequence ``seq`` (their sequence and type)."""
        ...

    async def history(self, job: RunJob) -> list[Event]:
        """Every event of the job so far, decoded, in order (a resumed agent run
        rebuilds its conversation from them)."""
        ...

    async def watch(self, job: RunJob, on_event: Callable[[str, Event | None], None]) -> Watch:
        """Call ``on_event(type, event)`` for events appended to the job from now on
        (``event`` is decoded for ``job.started`` only; log events are not reported)."""
        ...


class WorkSource(Protocol):
    """Where work items come from (the pool's durable consumer)."""

    async def next(self, timeout: float | None = None) -> WorkMessage | None: ...

    async def done(self) -> None:
        """The item taken with :meth:`next` is handled: its credit is free again."""
        ...

    def take_ready(self, limit: int) -> Sequence[WorkMessage]:
        """Items already delivered but not yet taken."""
        ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Deployment:
    """A deployment on this machine: its files and the skills it was created with."""

    id: str
    root: Path
    """The extracted bundle (the deployment root)."""
    skills: dict[str, SkillRecord]
    """By name, as ``DeploymentCreated`` recorded them (validated once, by the gateway)."""


class DeploymentLog(Protocol):
    """The deployments' facts in the event log."""

    async def created(self, project_id: str, deployment_id: str) -> DeploymentCreated | None:
        """The deployment's ``DeploymentCreated`` (``None``: the log has none)."""
        ...


class Deployments(Protocol):
    """Deployments on this machine, shared by every engine (the bundle cache)."""

    def cached(self, deployment_id: str) -> Deployment | None:
        """The deployment if it is already here (no I/O), else ``None``."""
        ...

    async def get(self, job: RunJob) -> Deployment:
        """The job's deployment, fetched, checked and extracted on its first job;
        raises ``PreparationFailed`` with the job's error."""
        ...


class SecretsProvider(Protocol):
    async def secrets_for(self, project_id: str) -> Mapping[str, str]:
        """The project's secrets, injected as env vars into its jobs (X2)."""
        ...


class Running(Protocol):
    """A job's process while it runs."""

    async def wait(self, timeout_s: float) -> RunFacts: ...

    def kill(self) -> None: ...

    async def close(self) -> None:
        """Teardown: the process gone, the workdir removed."""
        ...


P = TypeVar("P")
"""What an engine keeps of a prepared skill (its venv, its template's spec)."""


class ProcessEngine(Protocol[P]):
    """Runs a deterministic skill's function in a process of its own, one per job."""

    def lookup(self, deployment_id: str, skill: str) -> P | None:
        """The skill if it is already prepared (no I/O), else ``None``."""
        ...

    async def prepare(self, deployment: Deployment, spec: SkillRecord, job: RunJob) -> P:
        """The skill's venv and template; raises ``PreparationFailed`` with the job's error."""
        ...

    async def start(
        self,
        prepared: P,
        job: RunJob,
        *,
        attempt: int,
        timeout_s: float,
        secrets: Mapping[str, str],
        on_output: OutputSink,
    ) -> Running:
        """The job's process, running; raises ``PreparationFailed`` with the job's error."""
        ...


# -- the agent engine's ports ---------------------------------------------------------------


class ModelClient(Protocol):
    """One provider's API (Anthropic Messages, OpenAI Chat Completions)."""

    async def respond(self, request: ModelRequest, on_text: OnText) -> ModelReply:
        """One model call, streamed: ``on_text`` gets the text as it is generated.
        Retries rate limits, overload and 5xx with backoff; raises ``ProviderError``."""
        ...


class ModelClients(Protocol):
    def client(self, route: ModelRoute) -> ModelClient:
        """The client for the route's provider and endpoint."""
        ...

    async def aclose(self) -> None:
        """Close the clients' connection pools (the runner's shutdown)."""
        ...


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetched URL: its final address (after redirects), type and bytes."""

    url: str
    status: int
    media_type: str
    """The ``Content-Type`` without parameters (empty: none sent)."""
    data: bytes
    charset: str | None = None


class Fetcher(Protocol):
    """Outbound HTTP(S) GETs under the SSRF policy (A8, the attachments' URLs)."""

    async def get(self, url: str, *, max_bytes: int, timeout_s: float) -> Fetched:
        """Follow redirects (each one checked); raise ``FetchFailed`` on a refused
        address or scheme, a body over ``max_bytes``, a timeout or an HTTP error."""
        ...


class Search(Protocol):
    """The operator's search backend (SearXNG, a hosted search API)."""

    async def web(self, query: str, max_results: int) -> list[dict[str, Any]]:
        """``[{title, url, snippet}]``; raises ``SearchUnavailable``."""
        ...

    async def images(self, query: str, max_results: int) -> list[dict[str, Any]]:
        """``[{title, image_url, thumbnail_url, width, height, source_url}]``; raises
        ``SearchUnavailable``."""
        ...


@dataclass(frozen=True, slots=True)
class BashResult:
    exit_code: int
    """The command's exit status (``-N``: killed by signal N)."""
    output: str
    """The last 8 KB of its combined stdout and stderr."""
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class ToolCallResult:
    """What a user tool's ``run(inputs)`` did: returned ``value``, or failed (``error``)."""

    value: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DriveFile:
    """A file read from the drive inside the sandbox (``error``: it could not be)."""

    path: str
    """The drive path asked for (``drive/`` stripped)."""
    data: bytes | None = None
    size: int = 0
    error: str | None = None


class SandboxSession(Protocol):
    """The run's process in the job sandbox (ARCHITECTURE §5): every tool that touches
    files or runs code goes through it, so it sees what the job may see and no more."""

    async def bash(self, command: str, timeout_s: float) -> BashResult: ...

    async def call_tool(
        self, tool: ToolRecord, inputs: dict[str, Any], timeout_s: float
    ) -> ToolCallResult:
        """Run a user tool's function in a fresh child process."""
        ...

    async def read_files(self, paths: Sequence[str], max_bytes: int) -> list[DriveFile]:
        """Read drive files (traversal-safe: the sandbox sees its project's drive only)."""
        ...

    async def write_file(self, path: str, data: bytes) -> str:
        """Write a drive file (folders made as needed); returns its drive path."""
        ...

    async def close(self) -> None: ...


class Sandboxes(Protocol):
    async def open(
        self,
        deployment: Deployment,
        skill: SkillRecord,
        job: RunJob,
        *,
        attempt: int,
        timeout_s: float,
        secrets: Mapping[str, str],
        on_output: OutputSink,
    ) -> SandboxSession:
        """Start the run's sandbox process; raises ``SandboxFailed``."""
        ...


class LiveFeed(Protocol):
    """Frames for the clients attached to a job right now, never stored (Z5)."""

    def publish(self, job: RunJob, frame: dict[str, Any]) -> None:
        """Send and forget: a frame lost is text the next ``model_response`` holds."""
        ...


class SpendBook(Protocol):
    """Per-key spend windows shared by every runner (Z1; ``puras_common.spend``)."""

    async def reserve(
        self,
        project_id: str,
        key_prefix: str,
        limit: SpendLimit,
        *,
        hold_id: str,
        micros: int,
        now: datetime,
        expires_at: datetime,
    ) -> Refused | None:
        """Hold a call's worst case against the key's limit; :class:`Refused` if it would
        pass it. Billing settles the hold when it charges the call."""
        ...

    async def release(
        self, project_id: str, key_prefix: str, *, hold_id: str, now: datetime
    ) -> None:
        """The call was not made or failed upstream (not billed, B5): drop its hold."""
        ...


class Balances(Protocol):
    async def balance(self, project_id: str) -> int | None:
        """The project's balance as its ledger's last entry states it (``None``: no
        entry states one)."""
        ...
