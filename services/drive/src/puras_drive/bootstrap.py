"""The drive's composition root: provisions a drive for every project in the log.

The HTTP drive API (upload, list, sign, zip, origin) arrives with the drive capability;
today the service owns the storage root and makes sure each project has its drive the
moment the project exists, so jobs and the future API find it. :func:`build` wires the
handlers to the store it is given; :func:`run` connects the real adapters and follows
the log until ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from puras_common.bus import connect, ensure_streams
from puras_common.health import HealthServer
from puras_common.logging import get_logger
from puras_drive.adapters.local_fs import LocalDrive
from puras_drive.app.ports import DriveStore
from puras_drive.app.provisioning import Provisioner
from puras_drive.entrypoints.projects import follow_projects
from puras_drive.settings import DriveSettings

__all__ = ["App", "build", "run"]

log = get_logger(__name__)


@dataclass(frozen=True)
class App:
    """The drive, wired: the handlers the log's events go to."""

    provisioner: Provisioner


def build(settings: DriveSettings, *, store: DriveStore) -> App:
    return App(provisioner=Provisioner(store))


async def run(settings: DriveSettings, stop: asyncio.Event) -> None:
    bus = await connect(
        settings.nats_url,
        name="puras-drive",
        initial_timeout=settings.connect_timeout_s,
        credentials=settings.nats_credentials(),
    )
    ready = asyncio.Event()
    health: HealthServer | None = None
    try:
        await ensure_streams(bus.js, replicas=settings.stream_replicas)
        settings.root.mkdir(parents=True, exist_ok=True)
        app = build(settings, store=LocalDrive(settings.root))
        if settings.health_port:
            health = HealthServer(settings.health_host, settings.health_port, ready.is_set)
            await health.start()
        log.info("drive started", root=str(settings.root))
        await follow_projects(bus.js, app.provisioner, ready, stop)
    finally:
        if health is not None:
            await health.stop()
        with contextlib.suppress(Exception):
            await bus.close()
