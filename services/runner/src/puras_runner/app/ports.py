"""What the runner's handlers need from the outside world, as protocols.

Real implementations live in :mod:`puras_runner.adapters`; unit tests pass fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from puras_common.events.base import Event
from puras_common.events.commands import RunJob
from puras_common.events.types import JobStarted
from puras_common.manifest import SkillSpec
from puras_runner.domain.logs import Stream
from puras_runner.domain.outcome import RunFacts

__all__ = [
    "Engine",
    "JobEventLog",
    "LastEvent",
    "OutputSink",
    "Prepared",
    "Running",
    "SecretsProvider",
    "Watch",
    "WorkMessage",
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

    async def watch(self, job: RunJob, on_event: Callable[[str, Event | None], None]) -> Watch:
        """Call ``on_event(type, event)`` for events appended to the job from now on
        (``event`` is decoded for ``job.started`` only; log events are not reported)."""
        ...


class SecretsProvider(Protocol):
    async def secrets_for(self, project_id: str) -> Mapping[str, str]:
        """The project's secrets, injected as env vars into its jobs (X2)."""
        ...


class Prepared(Protocol):
    @property
    def spec(self) -> SkillSpec: ...


class Running(Protocol):
    """A job's process while it runs."""

    async def wait(self, timeout_s: float) -> RunFacts: ...

    def kill(self) -> None: ...

    async def close(self) -> None:
        """Teardown: the process gone, the workdir removed."""
        ...


P = TypeVar("P", bound=Prepared)


class Engine(Protocol[P]):
    def lookup(self, job: RunJob) -> P | None:
        """The job's skill if it is already prepared (no I/O), else ``None``."""
        ...

    async def prepare(self, job: RunJob) -> P:
        """Bundle, skill and venv; raises ``PreparationFailed`` with the job's error."""
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
