"""Billing's usage loop over an in-memory log: the checkpoint it stores never passes a
usage event whose charge is not stored, an unpriceable one is held (listed in the
checkpoint, retried) while the rest goes on, and the other job events cost nothing but
the read of their type."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from billing_fakes import FakeJobLog, FakeLedgerLog
from fake_event_log import FakeEventLog

from puras_billing.adapters.job_events import JobEvent
from puras_billing.bootstrap import build
from puras_billing.entrypoints.usage import RefusedUsage, UsageLoop
from puras_billing.settings import BillingSettings
from puras_common.bus.client import Published
from puras_common.events.base import Event, encode_event
from puras_common.events.ids import job_usage_id
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER, event_subject
from puras_common.events.types import (
    CreditCharged,
    JobLogged,
    JobStarted,
    ModelUsage,
    UsageRecorded,
)
from puras_common.ids import new_id
from puras_common.telemetry import tracer

SLUG = "claude/sonnet-4-7"


@dataclass
class Delivered:
    data: bytes
    headers: dict[str, str] | None
    metadata: Any
    subject: str = "ev.p.job.j"


class Source:
    """The log's job events, handed to the loop in the batches a test pushes."""

    def __init__(self) -> None:
        self.batches: asyncio.Queue[list[Delivered]] = asyncio.Queue()

    async def next_batch(self, max_n: int, timeout: float) -> Sequence[Delivered]:
        try:
            return await asyncio.wait_for(self.batches.get(), timeout)
        except TimeoutError:
            return []


class Checkpoints:
    def __init__(self) -> None:
        self.saved: list[tuple[int, list[int]]] = []
        self.changed = asyncio.Condition()

    async def save(self, last_seq: int, held: list[int]) -> None:
        async with self.changed:
            self.saved.append((last_seq, held))
            self.changed.notify_all()

    async def reaches(self, last_seq: int, held: list[int]) -> None:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(
                    lambda: bool(self.saved) and self.saved[-1] == (last_seq, held)
                ),
                10,
            )


class GatedJobLog(FakeJobLog):
    """The job's side of a charge waits for ``gate`` (a charge under way)."""

    def __init__(self, log: FakeEventLog) -> None:
        super().__init__(log)
        self.gate = asyncio.Event()
        self.gate.set()
        self.failures = 0

    async def append(
        self, event: Event, *, project_id: str, job_id: str, event_id: str
    ) -> Published:
        await self.gate.wait()
        if self.failures:
            self.failures -= 1
            raise ConnectionError("NATS away")
        return await super().append(event, project_id=project_id, job_id=job_id, event_id=event_id)


@dataclass
class World:
    log: FakeEventLog
    jobs: GatedJobLog
    loop: UsageLoop
    source: Source
    checkpoints: Checkpoints
    refused: RefusedUsage
    project: str
    job: str


def _world(start_after: int = 0) -> World:
    log = FakeEventLog()
    jobs = GatedJobLog(log)
    app = build(BillingSettings(env="dev"), ledger=FakeLedgerLog(log), jobs=jobs)
    checkpoints = Checkpoints()
    refused = RefusedUsage()
    loop = UsageLoop(
        app.usage,
        checkpoints,
        tracer("test"),
        start_after=start_after,
        refused=refused,
        retry_max_s=0.05,
        max_inflight=4,
        save_every_s=0.01,
    )
    return World(log, jobs, loop, Source(), checkpoints, refused, new_id(), new_id())


def _stored(w: World, ev: Event, event_id: str) -> Delivered:
    pub = w.log.append(
        ev, project_id=w.project, aggregate=AGG_JOB, aggregate_id=w.job, event_id=event_id
    )
    data = encode_event(ev, event_id=event_id, project_id=w.project, aggregate_id=w.job)
    meta = SimpleNamespace(sequence=SimpleNamespace(stream=pub.seq))
    return Delivered(data, {}, meta)


def _usage(w: World, step: int, model: str = SLUG) -> Delivered:
    ev = UsageRecorded(
        step=step,
        provider="anthropic",
        model=model,
        upstream_model="claude-x",
        usage=ModelUsage(input_tokens=1000, output_tokens=500),
    )
    return _stored(w, ev, job_usage_id(w.job, step))


def _log_line(w: World, n: int) -> Delivered:
    return _stored(w, JobLogged(stream="stdout", lines=[f"line {n}"]), f"{w.job}:log:{n}")


def _seq(d: Delivered) -> int:
    return int(d.metadata.sequence.stream)


def _charged(w: World) -> list[str]:
    recs = w.log.on_subject(event_subject(w.project, AGG_LEDGER, w.project))
    return [r.event.call.usage_id for r in recs if isinstance(r.event, CreditCharged)]


async def test_the_checkpoint_never_passes_a_charge_under_way() -> None:
    w = _world()
    stop = asyncio.Event()
    running = asyncio.create_task(w.loop.run(w.source, stop))
    before = _log_line(w, 1)
    w.jobs.gate.clear()  # the usage's charge is stored, its job cost not yet
    usage = _usage(w, 1)
    after = [_log_line(w, n) for n in range(2, 5)]
    await w.source.batches.put([before, usage, *after])
    await w.checkpoints.reaches(_seq(usage) - 1, [])
    assert w.loop.position() == (_seq(usage) - 1, [])
    # More job events go by meanwhile; the checkpoint waits for the charge.
    later = _log_line(w, 5)
    await w.source.batches.put([later])
    await asyncio.sleep(0.05)
    assert all(last < _seq(usage) for last, _ in w.checkpoints.saved)
    w.jobs.gate.set()
    await w.checkpoints.reaches(_seq(later), [])
    stop.set()
    await running
    assert _charged(w) == [job_usage_id(w.job, 1)]


async def test_a_stop_mid_charge_keeps_the_checkpoint_before_it() -> None:
    w = _world()
    w.loop._finish_s = 0.05  # the charge does not finish in time
    stop = asyncio.Event()
    running = asyncio.create_task(w.loop.run(w.source, stop))
    w.jobs.gate.clear()
    head = _log_line(w, 0)
    usage = _usage(w, 1)
    tail = _log_line(w, 1)
    await w.source.batches.put([head, usage, tail])
    await w.checkpoints.reaches(_seq(usage) - 1, [])
    stop.set()
    await running
    # Read again from there by the next billing; never stored as done.
    assert max(last for last, _ in w.checkpoints.saved) == _seq(usage) - 1


async def test_an_unpriceable_usage_is_held_in_the_checkpoint_and_the_rest_goes_on() -> None:
    w = _world()
    stop = asyncio.Event()
    running = asyncio.create_task(w.loop.run(w.source, stop))
    bad = _usage(w, 1, model="claude/no-such-model")
    good = _usage(w, 2)
    tail = _log_line(w, 1)
    await w.source.batches.put([bad, good, tail])
    await w.checkpoints.reaches(_seq(tail), [_seq(bad)])
    assert _charged(w) == [job_usage_id(w.job, 2)]
    assert "claude/no-such-model" in w.refused.degraded()["usage"]
    stop.set()
    await running
    # Still held when billing stops: the next one reads it again by its sequence.
    assert w.checkpoints.saved[-1] == (_seq(tail), [_seq(bad)])


async def test_a_held_usage_from_the_checkpoint_is_charged_once_priceable() -> None:
    w = _world()
    usage = _usage(w, 1)
    tail = _log_line(w, 1)
    loop = UsageLoop(
        w.loop._biller,
        w.checkpoints,
        tracer("test"),
        start_after=_seq(tail),
        refused=w.refused,
        retry_max_s=0.05,
        max_inflight=4,
        save_every_s=0.01,
    )
    stop = asyncio.Event()
    held = JobEvent(_seq(usage), usage.data, {})
    running = asyncio.create_task(loop.run(w.source, stop, held=[held]))
    await w.checkpoints.reaches(_seq(tail), [])
    stop.set()
    await running
    assert _charged(w) == [job_usage_id(w.job, 1)]


async def test_a_passing_failure_is_retried_in_place() -> None:
    w = _world()
    w.jobs.failures = 1
    stop = asyncio.Event()
    running = asyncio.create_task(w.loop.run(w.source, stop))
    usage = _usage(w, 1)
    await w.source.batches.put([usage])
    await w.checkpoints.reaches(_seq(usage), [])
    stop.set()
    await running
    assert _charged(w) == [job_usage_id(w.job, 1)]
    costs = w.log.on_subject(event_subject(w.project, AGG_JOB, w.job))
    assert [r.envelope.id for r in costs][-1] == f"cost:{job_usage_id(w.job, 1)}"


async def test_other_job_events_only_move_the_checkpoint() -> None:
    w = _world()
    stop = asyncio.Event()
    running = asyncio.create_task(w.loop.run(w.source, stop))
    events = [
        _stored(
            w,
            JobStarted(runner_id="r", attempt=1, deployment_id="d", started_at=datetime.now(UTC)),
            f"{w.job}:started",
        )
    ]
    events += [_log_line(w, n) for n in range(50)]
    await w.source.batches.put(events)
    await w.checkpoints.reaches(_seq(events[-1]), [])
    stop.set()
    await running
    assert _charged(w) == []
    # One checkpoint for the whole batch, not one per event.
    assert len(w.checkpoints.saved) == 1
