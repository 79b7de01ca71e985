"""Billing's composition root: the ledger's one writer, and the ledger projection.

:func:`build` wires the handlers to the ports it is given (the NATS adapter in
:func:`run`, in-memory ones in unit tests); :func:`run` connects the real adapters,
builds, and serves billing's commands while keeping the ledger projection current.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from puras_billing.adapters.ledger_log import NatsLedgerLog
from puras_billing.adapters.projection import LedgerProjection
from puras_billing.app.ledger import LedgerWriter
from puras_billing.app.ports import LedgerLog
from puras_billing.entrypoints.commands import run_commands
from puras_billing.settings import BillingSettings
from puras_common.bus import PullConsumer, connect, ensure_durable, ensure_streams
from puras_common.events.ids import BILLING_DURABLE
from puras_common.events.subjects import CMD_BILLING_FILTER, CMDS_STREAM
from puras_common.health import HealthServer, degraded_details
from puras_common.logging import get_logger
from puras_common.projection import Projection, ProjectorRunner

__all__ = ["BILLING_PROJECTIONS", "App", "build", "run"]

log = get_logger(__name__)

BILLING_PROJECTIONS: list[type[Projection]] = [LedgerProjection]


@dataclass(frozen=True)
class App:
    """Billing, wired: the handlers its commands go to."""

    ledger: LedgerWriter


def build(settings: BillingSettings, *, ledger: LedgerLog) -> App:
    return App(ledger=LedgerWriter(ledger))


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
        app = build(settings, ledger=NatsLedgerLog(bus))
        runner = ProjectorRunner(settings.database_dsn(), bus.js, LedgerProjection())
        consumer = PullConsumer(bus.nc, CMDS_STREAM, BILLING_DURABLE, max_inflight=settings.batch)
        await consumer.start()
        if settings.health_port:
            health = HealthServer(
                settings.health_host,
                settings.health_port,
                runner.caught_up.is_set,
                # Quarantined ledger events: 200 "degraded" (puras admin quarantine list).
                degraded=lambda: degraded_details({runner.projection.name: runner.quarantined}),
            )
            await health.start()
        log.info("billing started")
        # Either ending by an error ends billing (its supervisor restarts it).
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(runner.run(stop), name="ledger-projection")
            tasks.create_task(run_commands(consumer, app.ledger, stop), name="billing-commands")
    finally:
        if consumer is not None:
            await consumer.stop()
        if health is not None:
            await health.stop()
        with contextlib.suppress(Exception):
            await bus.close()
