"""In-memory stand-ins for the runner's ports, for unit tests without NATS.

:class:`FakeLog` and :class:`FakeDeploymentLog` are held to the same contract as the
NATS adapters by ``tests/integration/runner/test_job_log_contract.py``, and
:class:`FakeWorkSource` to the JetStream work source's by ``test_work_source_contract.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from puras_common.bundles import BundleNotFound
from puras_common.bus import ConcurrencyConflict
from puras_common.events.base import Event
from puras_common.events.commands import RunJob
from puras_common.events.types import DeploymentCreated, JobLogged, JobStarted
from puras_runner.app.ports import LastEvent

T0 = datetime(2030, 1, 1, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return T0


@dataclass
class Stored:
    seq: int
    id: str
    event: Event
    job_id: str


UNIT_JOB_ID = "job-1"
"""The job of :meth:`FakeLog.put` unless told otherwise (the unit tests' job)."""


class FakeLog:
    """Jobs' subjects in one stream: a stream-wide sequence and msg-id dedupe, and the
    expected-sequence check and watches per job subject."""

    def __init__(self) -> None:
        self.stored: list[Stored] = []
        self.watchers: list[tuple[str, Callable[[str, Event | None], None]]] = []

    def _last(self, job_id: str) -> Stored | None:
        return next((s for s in reversed(self.stored) if s.job_id == job_id), None)

    def put(self, event: Event, event_id: str, job_id: str = UNIT_JOB_ID) -> int:
        """Someone else appends (the scheduler, another runner)."""
        seq = self.stored[-1].seq + 1 if self.stored else 1
        self.stored.append(Stored(seq, event_id, event, job_id))
        for watched, w in list(self.watchers):
            if watched == job_id and type(event).type != JobLogged.type:
                w(type(event).type, event if isinstance(event, JobStarted) else None)
        return seq

    async def append(
        self, event: Event, *, job: RunJob, event_id: str, expected_seq: int | None
    ) -> int:
        await asyncio.sleep(0)
        for s in self.stored:
            if s.id == event_id:
                return s.seq
        last = self._last(job.job_id)
        last_seq = last.seq if last is not None else 0
        if expected_seq is not None and expected_seq != last_seq:
            raise ConcurrencyConflict(f"expected {expected_seq}, last is {last_seq}")
        return self.put(event, event_id, job.job_id)

    async def last(self, job: RunJob) -> LastEvent | None:
        last = self._last(job.job_id)
        return LastEvent(last.seq, type(last.event).type) if last is not None else None

    async def latest_started(self, job: RunJob) -> JobStarted | None:
        started = [
            s.event
            for s in self.stored
            if s.job_id == job.job_id and isinstance(s.event, JobStarted)
        ]
        return started[-1] if started else None

    async def since(self, job: RunJob, seq: int) -> list[LastEvent]:
        await asyncio.sleep(0)
        return [
            LastEvent(s.seq, type(s.event).type)
            for s in self.stored
            if s.job_id == job.job_id and s.seq > seq
        ]

    async def history(self, job: RunJob) -> list[Event]:
        await asyncio.sleep(0)
        return [s.event for s in self.stored if s.job_id == job.job_id]

    async def watch(self, job: RunJob, on_event: Callable[[str, Event | None], None]) -> Any:
        entry = (job.job_id, on_event)
        self.watchers.append(entry)
        log = self

        class _W:
            async def close(self) -> None:
                log.watchers.remove(entry)

        return _W()

    def types(self) -> list[str]:
        return [type(s.event).type for s in self.stored]

    def events(self, cls: type[Event]) -> list[Any]:
        return [s.event for s in self.stored if isinstance(s.event, cls)]


class FakeMsg:
    def __init__(
        self,
        job: RunJob | bytes,
        attempt: int = 1,
        *,
        redeliver: Callable[[FakeMsg], None] | None = None,
    ) -> None:
        self.data = job if isinstance(job, bytes) else msgspec.json.encode(job)
        self.headers: dict[str, str] | None = None
        self.attempt = attempt
        self.acked = self.naked = self.termed = 0
        self.progress = 0
        self.handled = asyncio.Event()
        self._redeliver = redeliver

    async def ack(self) -> None:
        self.acked += 1
        self.handled.set()

    async def nak(self, delay: float | None = None) -> None:
        self.naked += 1
        self.handled.set()
        if self._redeliver is not None:
            self._redeliver(FakeMsg(self.data, self.attempt + 1, redeliver=self._redeliver))

    async def term(self) -> None:
        self.termed += 1
        self.handled.set()

    async def in_progress(self) -> None:
        self.progress += 1


class FakeWorkSource:
    """Work items put in by the test, handed out one at a time."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[FakeMsg] = asyncio.Queue()
        self.stopped = False

    def put(self, msg: FakeMsg) -> None:
        self._queue.put_nowait(msg)

    def publish(self, data: bytes) -> None:
        """A new work item (given back with ``nak``, it comes again as the next attempt)."""
        self.put(FakeMsg(data, redeliver=self.put))

    async def next(self, timeout: float | None = None) -> FakeMsg | None:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def done(self) -> None:
        return None

    def take_ready(self, limit: int) -> Sequence[FakeMsg]:
        out: list[FakeMsg] = []
        while len(out) < limit and not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def stop(self) -> None:
        self.stopped = True


class MemoryBundleStore:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes) -> None:
        self.blobs[key] = data

    async def get(self, key: str) -> bytes:
        try:
            return self.blobs[key]
        except KeyError:
            raise BundleNotFound(key) from None

    async def delete(self, key: str) -> None:
        self.blobs.pop(key, None)


class FakeDeploymentLog:
    """``DeploymentCreated`` events by (project, deployment)."""

    def __init__(self) -> None:
        self.created_events: dict[tuple[str, str], DeploymentCreated] = {}
        self.reads = 0

    def add(self, project_id: str, event: DeploymentCreated) -> None:
        self.created_events[(project_id, event.deployment_id)] = event

    async def created(self, project_id: str, deployment_id: str) -> DeploymentCreated | None:
        self.reads += 1
        return self.created_events.get((project_id, deployment_id))
