"""Billing's usage consumer on a real nats-server: replicas sharing the durable charge each
usage event once, and a crash between the ledger's charge and the job's cost is completed
by the redelivery."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from nats.aio.msg import Msg

from puras_billing.adapters.job_log import NatsJobLog
from puras_billing.adapters.ledger_log import NatsLedgerLog
from puras_billing.bootstrap import USAGE_FILTER, USAGE_MAX_DELIVER, App, build
from puras_billing.entrypoints.usage import RefusedUsage, handle_job_event
from puras_billing.settings import BillingSettings
from puras_cli.infra.nats_server import NatsServer
from puras_common.bus import Bus, Published, PullConsumer, connect, ensure_durable
from puras_common.bus.serve import serve_pull
from puras_common.events.base import Event, decode_envelope, decode_event
from puras_common.events.ids import BILLING_USAGE_DURABLE, job_usage_id
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER, EVENTS_STREAM, event_subject
from puras_common.events.types import CreditCharged, JobCharged, ModelUsage, UsageRecorded
from puras_common.ids import new_id
from puras_common.telemetry import tracer

pytestmark = pytest.mark.integration

SLUG = "claude/sonnet-4-7"
PRICE = 12_600
"""1000 input tokens at 3.60 USD/1M plus 500 output tokens at 18.00 USD/1M (margin 20)."""


@dataclass
class Replica:
    bus: Bus
    app: App
    consumer: PullConsumer
    handled: Callable[[], None]


async def _durable(bus: Bus, ack_wait_s: float) -> None:
    await ensure_durable(
        bus.js,
        EVENTS_STREAM,
        BILLING_USAGE_DURABLE,
        filter_subject=USAGE_FILTER,
        ack_wait_s=ack_wait_s,
        max_deliver=USAGE_MAX_DELIVER,
    )


@contextlib.asynccontextmanager
async def _replicas(
    server: NatsServer,
    count: int,
    on_handled: Callable[[], None],
    *,
    make_jobs: Callable[[Bus], NatsJobLog] = NatsJobLog,
) -> AsyncIterator[list[Replica]]:
    stop = asyncio.Event()
    spans = tracer("test")
    out: list[Replica] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for i in range(count):
            bus = await connect(server.url, name=f"billing-{i}")
            app = build(
                BillingSettings(env="dev"),
                ledger=NatsLedgerLog(bus),
                jobs=make_jobs(bus),
            )
            consumer = PullConsumer(bus.nc, EVENTS_STREAM, BILLING_USAGE_DURABLE, max_inflight=4)
            await consumer.start()
            refused = RefusedUsage()

            async def handle(msg: Msg, app: App = app, refused: RefusedUsage = refused) -> None:
                try:
                    await handle_job_event(app.usage, msg, spans, refused=refused, retry_max_s=1)
                finally:
                    on_handled()

            tasks.append(asyncio.create_task(serve_pull(consumer, handle, stop)))
            out.append(Replica(bus, app, consumer, on_handled))
        yield out
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        for r in out:
            await r.consumer.stop()
            await r.bus.close()


async def _usage(bus: Bus, project: str, job: str, step: int) -> Published:
    return await bus.append(
        UsageRecorded(
            step=step,
            provider="anthropic",
            model=SLUG,
            upstream_model="claude-x",
            usage=ModelUsage(input_tokens=1000, output_tokens=500),
        ),
        project_id=project,
        aggregate=AGG_JOB,
        aggregate_id=job,
        event_id=job_usage_id(job, step),
        correlation_id=job,
    )


async def _events(bus: Bus, subject: str) -> list[tuple[str, Event | None]]:
    out: list[tuple[str, Event | None]] = []
    async for _, data in bus.subject_messages(subject):
        env = decode_envelope(data)
        out.append((env.id, decode_event(env)))
    return out


async def _settled(bus: Bus) -> None:
    """Every job event delivered to the durable has been acked."""
    info = await bus.js.consumer_info(EVENTS_STREAM, BILLING_USAGE_DURABLE)
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_two_replicas_charge_each_usage_event_once(nats_server: NatsServer, bus: Bus) -> None:
    await _durable(bus, ack_wait_s=30)
    projects = [new_id() for _ in range(3)]
    jobs = {p: [new_id() for _ in range(2)] for p in projects}
    steps = 4
    usage_events = len(projects) * 2 * steps
    # The consumer sees its own job.cost events too: each usage event makes two messages.
    all_handled = asyncio.Event()
    handled = 0

    def on_handled() -> None:
        nonlocal handled
        handled += 1
        if handled == 2 * usage_events:
            all_handled.set()

    async with _replicas(nats_server, 2, on_handled):
        for p in projects:
            for j in jobs[p]:
                for s in range(1, steps + 1):
                    await _usage(bus, p, j, s)
        await asyncio.wait_for(all_handled.wait(), 30)
    # Acks are sent without a reply; the consumer's state is read after the replicas left.
    await _settled(bus)
    for p in projects:
        ledger = await _events(bus, event_subject(p, AGG_LEDGER, p))
        charged = [ev.call for _, ev in ledger if isinstance(ev, CreditCharged)]
        assert len(charged) == 2 * steps
        assert Counter(c.usage_id for c in charged).most_common(1)[0][1] == 1
        assert sum(c.billed_micros for c in charged) == 2 * steps * PRICE
        for j in jobs[p]:
            costs = [
                (eid, ev.call)
                for eid, ev in await _events(bus, event_subject(p, AGG_JOB, j))
                if isinstance(ev, JobCharged)
            ]
            assert sorted(c.step for _, c in costs) == list(range(1, steps + 1))
            assert {eid for eid, _ in costs} == {
                f"cost:{job_usage_id(j, s)}" for s in range(1, steps + 1)
            }


async def test_concurrent_bills_of_one_usage_on_two_replicas_charge_once(
    nats_server: NatsServer, bus: Bus
) -> None:
    p, j = new_id(), new_id()
    pub = await _usage(bus, p, j, 1)
    [(usage_id, ev)] = await _events(bus, pub.subject)
    assert isinstance(ev, UsageRecorded)
    async with _replicas(nats_server, 2, lambda: None) as (a, b):
        calls = await asyncio.gather(
            *(
                r.app.usage.bill(ev, usage_id=usage_id, usage_seq=pub.seq, project_id=p, job_id=j)
                for r in (a, b, a, b, a, b)
            )
        )
    assert {c.billed_micros for c in calls} == {PRICE}
    ledger = await _events(bus, event_subject(p, AGG_LEDGER, p))
    # No credit: the charge takes the balance below zero, announced once.
    assert [eid for eid, _ in ledger] == [f"charge:{usage_id}", f"depleted:charge:{usage_id}"]
    costs = [eid for eid, e in await _events(bus, pub.subject) if isinstance(e, JobCharged)]
    assert costs == [f"cost:{usage_id}"]


class CrashOnce(NatsJobLog):
    """Dies after the ledger's charge, before the job's side is stored (first time only)."""

    crashed = 0

    async def append(
        self, event: Event, *, project_id: str, job_id: str, event_id: str
    ) -> Published:
        if CrashOnce.crashed == 0:
            CrashOnce.crashed += 1
            raise ConnectionError("billing died between the two appends")
        return await super().append(event, project_id=project_id, job_id=job_id, event_id=event_id)


async def test_a_crash_between_the_appends_is_completed_by_the_redelivery(
    nats_server: NatsServer, bus: Bus
) -> None:
    # A short ack wait: the unacked usage event comes back within the test.
    await _durable(bus, ack_wait_s=1)
    p, j = new_id(), new_id()
    cost_seen = asyncio.Event()

    async def on_job_event(msg: Msg) -> None:
        if decode_envelope(msg.data).type == JobCharged.type:
            cost_seen.set()

    sub = await bus.nc.subscribe(event_subject(p, AGG_JOB, j), cb=on_job_event)

    CrashOnce.crashed = 0
    async with _replicas(nats_server, 1, lambda: None, make_jobs=CrashOnce):
        pub = await _usage(bus, p, j, 1)
        await asyncio.wait_for(cost_seen.wait(), 30)
    await sub.unsubscribe()
    assert CrashOnce.crashed == 1
    usage_id = job_usage_id(j, 1)
    ledger = await _events(bus, event_subject(p, AGG_LEDGER, p))
    assert [eid for eid, _ in ledger] == [f"charge:{usage_id}", f"depleted:charge:{usage_id}"]
    job_events = await _events(bus, pub.subject)
    assert [eid for eid, _ in job_events] == [usage_id, f"cost:{usage_id}"]
    charge = ledger[0][1]
    assert isinstance(charge, CreditCharged)
    assert job_events[1][1] == JobCharged(call=charge.call)


async def test_the_durable_never_gives_up_and_is_declared_idempotently(bus: Bus) -> None:
    await _durable(bus, ack_wait_s=30)
    await _durable(bus, ack_wait_s=30)
    info = await bus.js.consumer_info(EVENTS_STREAM, BILLING_USAGE_DURABLE)
    assert info.config.filter_subject == "ev.*.job.*"
    assert info.config.max_deliver in (-1, None)
