"""What the gateway's use cases need from the outside world, as protocols.

The adapters in :mod:`puras_gateway.adapters` (NATS, Postgres) satisfy them, and so do
the fakes of the unit tests; the use cases in this package never see a NATS message or
an asyncpg connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from puras_common.bus.client import Published
from puras_common.events.base import Event
from puras_common.events.commands import CancelJob, GrantCredit, SubmitJob
from puras_common.events.types import JobRecord
from puras_common.views.deployments import DeploymentsView
from puras_common.views.keys import KeysView
from puras_gateway.domain.idempotency import Claim
from puras_gateway.domain.job_events import JobEvent
from puras_gateway.domain.live import ModelDelta
from puras_gateway.domain.requests import Cursor, ListParams
from puras_gateway.domain.usage_query import UsageQuery

__all__ = [
    "Auditor",
    "Billing",
    "BuildRequests",
    "Commands",
    "Drive",
    "DriveReply",
    "EventLog",
    "FeedbackStore",
    "IdempotencyStore",
    "JobEvents",
    "JobTail",
    "KeyUseRecorder",
    "LiveFrames",
    "LiveTail",
    "LiveViews",
    "MediaRelay",
    "MediaReply",
    "ProjectionWatch",
    "ReadViews",
    "SecretStore",
    "StoredSecret",
]


class Commands(Protocol):
    """Commands to the scheduler."""

    async def submit(self, cmd: SubmitJob) -> None: ...

    async def cancel(self, cmd: CancelJob) -> None: ...

    async def pending_submit(self, project_id: str, job_id: str) -> SubmitJob | None:
        """A submit accepted but not admitted yet (``None``: unknown, or admitted)."""
        ...


@dataclass(frozen=True)
class DriveReply:
    """The drive service's answer, its body still streaming (``close`` when done)."""

    status: int
    headers: Mapping[str, str]
    body: AsyncIterator[bytes]
    close: Callable[[], Awaitable[None]]


class Drive(Protocol):
    """The drive service (D2-D7): the gateway forwards the drive API to it."""

    async def forward(
        self,
        method: str,
        path: str,
        *,
        query: str,
        headers: Mapping[str, str],
        body: AsyncIterator[bytes] | None,
        project_id: str | None,
        public_base: str,
        extra_headers: Mapping[str, str] | None = None,
    ) -> DriveReply:
        """Send the request for ``project_id`` (``None``: unauthenticated, a signed
        URL's fetch); raises ``ConnectionError`` when the drive does not answer."""
        ...


@dataclass(frozen=True)
class MediaReply:
    """A runner's answer to a media call: an HTTP status and its JSON body."""

    status: int
    body: dict[str, Any]


class MediaRelay(Protocol):
    """Media calls go to the runner running the job (it holds the job's caps, writes its
    drive and records its usage)."""

    async def generate(
        self, runner: str, token: str, request: dict[str, Any], timeout_s: float
    ) -> MediaReply:
        """Raises ``LookupError`` when no runner by that id answers, ``TimeoutError``."""
        ...


class Auditor(Protocol):
    """The billing audit (Z3): the log replayed and diffed against the live tables."""

    async def audit(self, settle_s: float) -> dict[str, Any]:
        """The report (``clean``, ``differences``, ...); raises
        :class:`~puras_common.audit.AuditIncomplete` if nothing could be compared."""
        ...


class Billing(Protocol):
    """Commands to billing, the ledger's one writer."""

    async def grant(self, cmd: GrantCredit, timeout: float) -> bool:
        """Send the grant; true once the ledger projection holds it (within ``timeout``).
        False says only that it is not projected yet: the grant is sent and will land."""
        ...


class JobTail(Protocol):
    """Live events of one job, from a subscription made before anything is published."""

    def mark_seen(self, events: list[JobEvent]) -> None: ...

    def poll(self) -> JobEvent | None:
        """The next new event that has arrived already (never waits), or ``None``."""
        ...

    async def wait(self, timeout: float | None) -> bool:
        """Whether anything arrived before ``timeout`` (``poll`` may still find nothing
        new: a duplicate of a replayed event)."""
        ...

    async def next(self, timeout: float | None) -> JobEvent | None: ...

    async def close(self) -> None: ...


class JobEvents(Protocol):
    """One job's events in the log."""

    async def tail(self, project_id: str, job_id: str) -> JobTail: ...

    async def replay(
        self, project_id: str, job_id: str, *, after_seq: int = 0, first_idx: int = 1
    ) -> list[JobEvent]: ...

    async def last(self, project_id: str, job_id: str) -> JobEvent | None: ...


class LiveTail(Protocol):
    """One job's live frames (never stored, Z5), held for a stream until it takes them;
    a stream that falls behind loses the oldest (the log's responses supersede them)."""

    async def wait(self) -> None:
        """Return once a frame is pending (at once if one is)."""
        ...

    def drain(self) -> list[ModelDelta]:
        """The pending frames, oldest first; none are pending afterwards."""
        ...

    async def close(self) -> None: ...


class LiveFrames(Protocol):
    """The live frames of jobs, as runners publish them."""

    async def follow(self, project_id: str, job_id: str) -> LiveTail:
        """Frames published from now on (the subscription is in place on return)."""
        ...


class EventLog(Protocol):
    """Appending facts of the aggregates the gateway owns (projects, keys, deployments)."""

    async def append(
        self,
        event: Event,
        *,
        project_id: str,
        aggregate: str,
        aggregate_id: str,
        event_id: str,
        expected_last_subject_seq: int | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Published: ...

    async def last_subject_seq(self, subject: str) -> int: ...


class LiveViews(Protocol):
    """Keys and deployments held in memory, kept current from the log."""

    keys: KeysView
    deployments: DeploymentsView

    async def wait_for(self, seq: int, timeout: float = 5.0) -> bool: ...


class BuildRequests(Protocol):
    """Asking the runners to build a pushed deployment's venv (Z7)."""

    async def request(self, project_id: str, deployment_id: str) -> None: ...


class ProjectionWatch(Protocol):
    """Where the Postgres projections are (read-your-writes across processes)."""

    async def wait_for(self, name: str, seq: int, timeout: float) -> bool: ...


class ReadViews(Protocol):
    """Queries on the Postgres read views, scoped by project."""

    async def get_job(self, project_id: str, job_id: str) -> JobRecord | None: ...

    async def get_job_at(
        self, project_id: str, job_id: str
    ) -> tuple[JobRecord, int, int] | None: ...

    async def list_jobs(
        self, project_id: str, params: ListParams
    ) -> tuple[list[JobRecord], Cursor | None]: ...

    async def job_events(self, project_id: str, job_id: str) -> list[dict[str, Any]]: ...

    async def list_deployments(self, project_id: str) -> list[dict[str, Any]]: ...

    async def list_keys(self, project_id: str) -> list[dict[str, Any]]: ...

    async def list_projects(self) -> list[dict[str, Any]]: ...

    async def balance(self, project_id: str) -> int: ...

    async def key_spend(self, project_id: str, prefix: str, *, since: datetime) -> int:
        """What billing charged the jobs of one key since ``since`` (Z1), in micros."""
        ...

    async def usage(self, project_id: str, q: UsageQuery) -> list[dict[str, Any]]:
        """Z2: billed calls in the query's range, summed per key, ordered by key."""
        ...


class FeedbackStore(Protocol):
    """The feedback rows of jobs (J9), scoped by project."""

    async def list_feedback(self, project_id: str, job_id: str) -> list[dict[str, Any]]:
        """The job's rows, newest first."""
        ...

    async def get_feedback(
        self, project_id: str, job_id: str, end_user_id: str
    ) -> dict[str, Any] | None: ...


class IdempotencyStore(Protocol):
    async def claim(
        self, project_id: str, idempotency_key: str, new_job_id: str, body: str
    ) -> Claim: ...


class KeyUseRecorder(Protocol):
    """Records when a key was last used (operational data, not an event)."""

    def due(self, prefix: str, now_mono: float) -> bool: ...

    async def record(self, prefix: str, at: datetime) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """A project secret as the gateway's table holds it: sealed (X1)."""

    project_id: str
    name: str
    key_id: str
    ciphertext: str
    created_at: datetime
    updated_at: datetime
    last_seq: int
    """Sequence of its last event (the expected last one when a rotation re-seals it)."""


class SecretStore(Protocol):
    """The projected secrets: by project, and across projects for a key rotation."""

    async def of_project(self, project_id: str) -> list[StoredSecret]: ...

    async def get(self, project_id: str, name: str) -> StoredSecret | None: ...

    async def sealed_elsewhere(self, key_id: str) -> list[StoredSecret]:
        """Every secret not sealed under ``key_id``."""
        ...
