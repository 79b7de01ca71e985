"""Drive's composition root: provisions a drive for every project in the log.

The HTTP drive API (upload, list, sign, zip, origin) arrives with the drive capability;
today the service owns the storage root and makes sure each project has its folder the
moment the project exists, so jobs and the future API find it.
"""

from __future__ import annotations

import asyncio
import contextlib

from puras_common.bus import EventFollower, connect, ensure_streams
from puras_common.events.subjects import AGG_PROJECT, aggregate_filter
from puras_common.events.types import ProjectCreated
from puras_common.health import HealthServer
from puras_common.logging import get_logger
from puras_common.projection import decode_batch
from puras_drive.adapters.local_fs import LocalDrive
from puras_drive.settings import DriveSettings

__all__ = ["run"]

log = get_logger(__name__)


async def run(settings: DriveSettings, stop: asyncio.Event) -> None:
    bus = await connect(
        settings.nats_url,
        name="puras-drive",
        initial_timeout=settings.connect_timeout_s,
        credentials=settings.nats_credentials(),
    )
    drive = LocalDrive(settings.root)
    ready = asyncio.Event()
    health: HealthServer | None = None
    follower = EventFollower(bus.js, [aggregate_filter(AGG_PROJECT)], start_seq=1)
    try:
        await ensure_streams(bus.js, replicas=settings.stream_replicas)
        drive.root.mkdir(parents=True, exist_ok=True)
        if settings.health_port:
            health = HealthServer(settings.health_host, settings.health_port, ready.is_set)
            await health.start()
        await follower.start()
        if follower.initial_pending == 0:
            ready.set()
        log.info("drive started", root=str(settings.root))
        while not stop.is_set():
            raw = await follower.next_batch(500, timeout=0.5)
            for rec in decode_batch(raw):
                if isinstance(rec.event, ProjectCreated):
                    path = await asyncio.to_thread(drive.provision, rec.envelope.project_id)
                    log.info(
                        "drive provisioned", project_id=rec.envelope.project_id, path=str(path)
                    )
            if raw and raw[-1].pending == 0:
                ready.set()
    finally:
        await follower.stop()
        if health is not None:
            await health.stop()
        with contextlib.suppress(Exception):
            await bus.close()
