"""Billing's composition root: keeps the ledger projection current."""

from __future__ import annotations

import asyncio
import contextlib

from puras_billing.adapters.projection import LedgerProjection
from puras_billing.settings import BillingSettings
from puras_common.bus import connect, ensure_streams
from puras_common.health import HealthServer, degraded_details
from puras_common.logging import get_logger
from puras_common.projection import Projection, ProjectorRunner

__all__ = ["BILLING_PROJECTIONS", "run"]

log = get_logger(__name__)

BILLING_PROJECTIONS: list[type[Projection]] = [LedgerProjection]


async def run(settings: BillingSettings, stop: asyncio.Event) -> None:
    bus = await connect(
        settings.nats_url,
        name="puras-billing",
        initial_timeout=settings.connect_timeout_s,
        credentials=settings.nats_credentials(),
    )
    health: HealthServer | None = None
    try:
        await ensure_streams(bus.js, replicas=settings.stream_replicas)
        runner = ProjectorRunner(settings.database_dsn(), bus.js, LedgerProjection())
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
        await runner.run(stop)
    finally:
        if health is not None:
            await health.stop()
        with contextlib.suppress(Exception):
            await bus.close()
