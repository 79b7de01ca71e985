"""``puras-gateway-projector``: the gateway's projections, in a process of their own.

The HTTP gateway (``run_projectors`` off) then spends its event loop on requests alone;
its reads wait for these projectors through the checkpoint watcher (``NOTIFY
puras_projection``), as any replica's do. Same NATS identity and Postgres role as the
gateway (``PURAS_GATEWAY_*``): the tables are the gateway's. Run one or more: one replica
per projection is active (an advisory lock), the others stand by and take over when it
dies. ``/healthz`` and ``/readyz`` answer on ``PURAS_GATEWAY_HEALTH_PORT`` (0: none):
ready once each projection caught up with the log (or stands by), degraded with its
quarantined events and failing projectors.
"""

from __future__ import annotations

import asyncio
import contextlib

from puras_common.bus import connect, ensure_streams
from puras_common.health import HealthServer
from puras_common.logging import get_logger
from puras_common.service import run_service
from puras_gateway.projectors import GatewayProjectors
from puras_gateway.settings import ProjectorSettings

log = get_logger(__name__)


async def run(settings: ProjectorSettings, stop: asyncio.Event) -> None:
    s = settings
    suffix = f"-{s.instance_id}" if s.instance_id else ""
    bus = await connect(
        s.nats_url,
        name=f"puras-gateway-projector{suffix}",
        initial_timeout=s.connect_timeout_s,
        credentials=s.nats_credentials(),
    )
    health: HealthServer | None = None
    projectors: GatewayProjectors | None = None
    try:
        await ensure_streams(bus.js, replicas=s.stream_replicas)
        projectors = GatewayProjectors(
            s.database_dsn(), bus.js, jobs_linger_s=s.jobs_projection_linger_s
        )
        projectors.start()
        if s.health_port:
            health = HealthServer(
                s.health_host, s.health_port, projectors.ready, degraded=projectors.degraded
            )
            await health.start()
        log.info("gateway projectors started")
        await stop.wait()
    finally:
        if projectors is not None:
            await projectors.stop()
        if health is not None:
            await health.stop()
        with contextlib.suppress(Exception):
            await bus.close()


def main() -> None:
    run_service(ProjectorSettings, run)


if __name__ == "__main__":
    main()
