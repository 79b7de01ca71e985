"""Billing's composition root: the ledger's one writer, the usage biller, and the
ledger projection.

:func:`build` wires the handlers to the ports it is given (the NATS adapters in
:func:`run`, in-memory ones in unit tests); :func:`run` connects the real adapters,
builds, and serves billing's commands and the jobs' usage events while keeping the
ledger projection current.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from puras_billing.adapters.job_log import NatsJobLog
from puras_billing.adapters.ledger_log import NatsLedgerLog
from puras_billing.adapters.projection import LedgerProjection
from puras_billing.app.ledger import LedgerWriter
from puras_billing.app.ports import JobLog, LedgerLog, SpendSettler
from puras_billing.app.usage import UsageBiller
from puras_billing.entrypoints.commands import run_commands
from puras_billing.entrypoints.usage import RefusedUsage
from puras_billing.entrypoints.usage_reader import UsageReader
from puras_billing.settings import BillingSettings
from puras_common.bus import PullConsumer, connect, ensure_durable, ensure_streams
from puras_common.events.ids import BILLING_DURABLE
from puras_common.events.subjects import CMD_BILLING_FILTER, CMDS_STREAM
from puras_common.health import HealthServer, degraded_details
from puras_common.logging import get_logger
from puras_common.pricing import Registry, load_registry
from puras_common.projection import Projection, ProjectorRunner
from puras_common.spend.book import KvSpendBook

__all__ = ["BILLING_PROJECTIONS", "App", "build", "run"]

log = get_logger(__name__)

BILLING_PROJECTIONS: list[type[Projection]] = [LedgerProjection]


@dataclass(frozen=True)
class App:
    """Billing, wired: the handlers its commands and usage events go to."""

    ledger: LedgerWriter
    usage: UsageBiller


def build(
    settings: BillingSettings,
    *,
    ledger: LedgerLog,
    jobs: JobLog,
    registry: Registry | None = None,
    spend: SpendSettler | None = None,
) -> App:
    writer = LedgerWriter(ledger)
    prices = registry if registry is not None else load_registry()
    return App(
        ledger=writer,
        usage=UsageBiller(writer, jobs, prices, margin_pct=settings.margin_pct, spend=spend),
    )


async def run(settings: BillingSettings, stop: asyncio.Event) -> None:
    bus = await connect(
        settings.nats_url,
        name="puras-billing",
        initial_timeout=settings.connect_timeout_s,
        credentials=settings.nats_credentials(),
    )
    health: HealthServer | None = None
    consumer: PullConsumer | None = None
    try:
        await ensure_streams(bus.js, replicas=settings.stream_replicas)
        # Created here, before readiness: grants the gateway sent meanwhile wait in the
        # work queue for this consumer, and are taken from it once it exists.
        await ensure_durable(
            bus.js,
            CMDS_STREAM,
            BILLING_DURABLE,
            filter_subject=CMD_BILLING_FILTER,
            ack_wait_s=settings.cmd_ack_wait_s,
            max_deliver=settings.cmd_max_deliver,
        )
        app = build(
            settings,
            ledger=NatsLedgerLog(bus),
            jobs=NatsJobLog(bus),
            spend=KvSpendBook(bus, replicas=settings.stream_replicas),
        )
        refused = RefusedUsage()
        runner = ProjectorRunner(settings.database_dsn(), bus.js, LedgerProjection())
        consumer = PullConsumer(bus.nc, CMDS_STREAM, BILLING_DURABLE, max_inflight=settings.batch)
        await consumer.start()
        # From the log's start on first run: usage recorded before billing first ran is
        # charged too (each charge once, whenever it is read).
        usage = UsageReader(
            settings.database_dsn(),
            bus.js,
            app.usage,
            refused=refused,
            retry_max_s=settings.usage_retry_max_s,
            max_inflight=settings.usage_batch,
            save_every_s=settings.usage_checkpoint_s,
        )
        if settings.health_port:
            health = HealthServer(
                settings.health_host,
                settings.health_port,
                runner.caught_up.is_set,
                # Quarantined ledger events (puras admin quarantine list) and usage events
                # that cannot be priced: 200 "degraded".
                degraded=lambda: degraded_details(
                    {runner.projection.name: runner.quarantined}, refused=refused.degraded()
                ),
            )
            await health.start()
        log.info("billing started")
        # Any of them ending by an error ends billing (its supervisor restarts it).
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(runner.run(stop), name="ledger-projection")
            tasks.create_task(run_commands(consumer, app.ledger, stop), name="billing-commands")
            tasks.create_task(usage.run(stop), name="billing-usage")
    finally:
        if consumer is not None:
            await consumer.stop()
        if health is not None:
            await health.stop()
        with contextlib.suppress(Exception):
            await bus.close()
