"""Billing's usage reader on a real nats-server and Postgres: one replica reads the job
subjects at a time and charges each usage event once, a standby takes over from the
checkpoint when the reader dies mid-batch, a crash between the ledger's charge and the
job's cost is completed, and the old per-event-ack durable's position is carried over."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from nats.js.errors import NotFoundError

from puras_billing.adapters.job_events import JOB_FILTER
from puras_billing.adapters.job_log import NatsJobLog
from puras_billing.adapters.ledger_log import NatsLedgerLog
from puras_billing.bootstrap import build
from puras_billing.entrypoints.usage import RefusedUsage
from puras_billing.entrypoints.usage_reader import UsageReader
from puras_billing.settings import BillingSettings
from puras_cli.infra.nats_server import NatsServer
from puras_common.bus import Bus, Published, connect, ensure_durable
from puras_common.events.base import Event, decode_envelope, decode_event
from puras_common.events.ids import BILLING_USAGE_DURABLE, job_log_id, job_usage_id
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER, EVENTS_STREAM, event_subject
from puras_common.events.types import (
    CreditCharged,
    JobCharged,
    JobLogged,
    ModelUsage,
    UsageRecorded,
)
from puras_common.ids import new_id

pytestmark = pytest.mark.integration

SLUG = "claude/sonnet-4-7"
PRICE = 12_600
"""1000 input tokens at 3.60 USD/1M plus 500 output tokens at 18.00 USD/1M (margin 20)."""


class Replica:
    """A billing replica's usage reader, on its own NATS connection."""

    def __init__(
        self, bus: Bus, reader: UsageReader, task: asyncio.Task[None], stop: asyncio.Event
    ):
        self.bus = bus
        self.reader = reader
        self.task = task
        self.stop = stop

    async def kill(self) -> None:
        """Gone at once, as a killed process: no final checkpoint, no finishing."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        await self.bus.close()


@contextlib.asynccontextmanager
async def _billing(
    server: NatsServer,
    dsn: str,
    *,
    make_jobs: Callable[[Bus], NatsJobLog] = NatsJobLog,
    save_every_s: float = 0.05,
) -> AsyncIterator[Callable[..., Awaitable[Replica]]]:
    started: list[Replica] = []

    async def start(save_s: float = save_every_s) -> Replica:
        bus = await connect(server.url, name=f"billing-{len(started)}")
        app = build(BillingSettings(env="dev"), ledger=NatsLedgerLog(bus), jobs=make_jobs(bus))
        reader = UsageReader(
            dsn,
            bus.js,
            app.usage,
            refused=RefusedUsage(),
            retry_max_s=1,
            max_inflight=8,
            save_every_s=save_s,
            standby_poll_s=0.05,
        )
        stop = asyncio.Event()
        r = Replica(bus, reader, asyncio.create_task(reader.run(stop)), stop)
        started.append(r)
        return r

    try:
        yield start
    finally:
        for r in started:
            r.stop.set()
        await asyncio.gather(*(r.task for r in started), return_exceptions=True)
        for r in started:
            with contextlib.suppress(Exception):
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


async def _log_line(bus: Bus, project: str, job: str, n: int) -> Published:
    return await bus.append(
        JobLogged(stream="stdout", lines=[f"line {n}"]),
        project_id=project,
        aggregate=AGG_JOB,
        aggregate_id=job,
        event_id=job_log_id(job, 1, n),
    )


async def _events(bus: Bus, subject: str) -> list[tuple[str, Event | None]]:
    out: list[tuple[str, Event | None]] = []
    async for _, data in bus.subject_messages(subject):
        env = decode_envelope(data)
        out.append((env.id, decode_event(env)))
    return out


async def _charges(bus: Bus, project: str) -> list[CreditCharged]:
    ledger = await _events(bus, event_subject(project, AGG_LEDGER, project))
    return [ev for _, ev in ledger if isinstance(ev, CreditCharged)]


async def _checkpoint(dsn: str) -> tuple[int, list[int]] | None:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT last_seq, held FROM usage_checkpoint WHERE name = $1", BILLING_USAGE_DURABLE
        )
    finally:
        await conn.close()
    return None if row is None else (int(row["last_seq"]), list(row["held"]))


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    """Wait for ``check`` to hold (it reads state another process writes, polled)."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.05)


async def _all_charged(bus: Bus, projects: list[str], each: int) -> bool:
    for p in projects:
        if len(await _charges(bus, p)) < each:
            return False
    return True


async def test_one_replica_reads_and_a_standby_takes_over_a_killed_one(
    nats_server: NatsServer, bus: Bus, database_url: str
) -> None:
    projects = [new_id() for _ in range(3)]
    jobs = {p: [new_id() for _ in range(2)] for p in projects}
    steps = 4
    async with _billing(nats_server, database_url) as start:
        # `a` stores its checkpoint once and then not for a minute: whoever takes over
        # reads again nearly all it charged.
        a = await start(save_s=60)
        await asyncio.wait_for(a.reader.active.wait(), 10)
        b = await start()
        # Half the usage (with log lines between) while `a` reads.
        for p in projects:
            for j in jobs[p]:
                for s in range(1, steps // 2 + 1):
                    await _log_line(bus, p, j, s)
                    last_charged_by_a = (await _usage(bus, p, j, s)).seq
        await _until(lambda: _all_charged(bus, projects, 2 * (steps // 2)))
        assert not b.reader.active.is_set()  # a standby: it reads nothing
        left_at = await _checkpoint(database_url)
        assert left_at is not None
        assert left_at[0] < last_charged_by_a  # so the standby reads again what `a` charged
        # `a` is killed mid-batch: the rest is appended as it dies.
        rest = asyncio.gather(
            *(
                _usage(bus, p, j, s)
                for p in projects
                for j in jobs[p]
                for s in range(steps // 2 + 1, steps + 1)
            )
        )
        await a.kill()
        await rest
        await asyncio.wait_for(b.reader.active.wait(), 10)
        await _until(lambda: _all_charged(bus, projects, 2 * steps))
    for p in projects:
        charged = [c.call for c in await _charges(bus, p)]
        assert len(charged) == 2 * steps
        assert Counter(c.usage_id for c in charged).most_common(1)[0][1] == 1
        assert sum(c.billed_micros for c in charged) == 2 * steps * PRICE
        for j in jobs[p]:
            costs = [
                eid
                for eid, ev in await _events(bus, event_subject(p, AGG_JOB, j))
                if isinstance(ev, JobCharged)
            ]
            assert sorted(costs) == sorted(
                f"cost:{job_usage_id(j, s)}" for s in range(1, steps + 1)
            )
    # Stopped cleanly at the end: the checkpoint holds the last job event.
    info = await bus.js.stream_info(EVENTS_STREAM)
    pos = await _checkpoint(database_url)
    assert pos is not None
    assert pos[1] == []
    assert pos[0] <= info.state.last_seq


class CrashOnce(NatsJobLog):
    """Fails after the ledger's charge, before the job's side is stored (first time only)."""

    crashed = 0

    async def append(
        self, event: Event, *, project_id: str, job_id: str, event_id: str
    ) -> Published:
        if CrashOnce.crashed == 0:
            CrashOnce.crashed += 1
            raise ConnectionError("NATS away between the two appends")
        return await super().append(event, project_id=project_id, job_id=job_id, event_id=event_id)


async def test_a_failure_between_the_appends_is_completed_by_the_retry(
    nats_server: NatsServer, bus: Bus, database_url: str
) -> None:
    p, j = new_id(), new_id()
    CrashOnce.crashed = 0
    async with _billing(nats_server, database_url, make_jobs=CrashOnce) as start:
        await start()
        pub = await _usage(bus, p, j, 1)

        async def costed() -> bool:
            evs = await _events(bus, pub.subject)
            return any(isinstance(ev, JobCharged) for _, ev in evs)

        await _until(costed)
    assert CrashOnce.crashed == 1
    usage_id = job_usage_id(j, 1)
    ledger = await _events(bus, event_subject(p, AGG_LEDGER, p))
    assert [eid for eid, _ in ledger] == [f"charge:{usage_id}", f"depleted:charge:{usage_id}"]
    job_events = await _events(bus, pub.subject)
    assert [eid for eid, _ in job_events] == [usage_id, f"cost:{usage_id}"]
    charge = ledger[0][1]
    assert isinstance(charge, CreditCharged)
    assert job_events[1][1] == JobCharged(call=charge.call)


async def test_the_old_durables_position_is_carried_over_and_the_durable_removed(
    nats_server: NatsServer, bus: Bus, database_url: str
) -> None:
    # The durable billing used to ack each job event on: it handled the first usage.
    await ensure_durable(
        bus.js,
        EVENTS_STREAM,
        BILLING_USAGE_DURABLE,
        filter_subject=JOB_FILTER,
        ack_wait_s=30,
        max_deliver=-1,
    )
    p, j = new_id(), new_id()
    handled = await _usage(bus, p, j, 1)
    sub = await bus.js.pull_subscribe_bind(BILLING_USAGE_DURABLE, stream=EVENTS_STREAM)
    [msg] = await sub.fetch(1, timeout=5)
    await msg.ack_sync()
    await _usage(bus, p, j, 2)
    async with _billing(nats_server, database_url) as start:
        await start()
        await _until(lambda: _all_charged(bus, [p], 1))
        pos = await _checkpoint(database_url)
        assert pos is not None
        assert pos[0] >= handled.seq
    [charge] = await _charges(bus, p)
    # Only the one the durable had not handled (the other was charged before it).
    assert charge.call.usage_id == job_usage_id(j, 2)
    with pytest.raises(NotFoundError):
        await bus.js.consumer_info(EVENTS_STREAM, BILLING_USAGE_DURABLE)
