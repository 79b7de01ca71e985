"""The drive's composition root: provisions a drive for every project in the log.

The HTTP drive API (upload, list, sign, zip, origin) arrives with the drive capability;
today the service owns the storage (the local filesystem, or an S3 bucket with
``PURAS_DRIVE_STORAGE=s3``) and makes sure each project has its drive the moment the
project exists, so jobs and the future API find it. :func:`build` wires the handlers to
the adapters it is given; :func:`backend` builds the configured ones; :func:`run`
connects them and follows the log until ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from minio import Minio

from puras_common.bus import connect, ensure_streams
from puras_common.health import HealthServer
from puras_common.logging import get_logger
from puras_drive.adapters.local_fs import LocalDrive
from puras_drive.adapters.local_fs_storage import LocalStorage
from puras_drive.adapters.s3_storage import S3Storage
from puras_drive.app.ports import DriveStorage, DriveStore
from puras_drive.app.provisioning import Provisioner
from puras_drive.entrypoints.projects import follow_projects
from puras_drive.settings import DriveSettings

__all__ = ["App", "Backend", "backend", "build", "run"]

log = get_logger(__name__)


@dataclass(frozen=True)
class App:
    """The drive, wired: the handlers the log's events go to."""

    provisioner: Provisioner
    storage: DriveStorage
    """The drive's files, for the HTTP API to come."""


@dataclass(frozen=True)
class Backend:
    """The configured storage: what provisions a project's drive, and what holds its
    files."""

    store: DriveStore
    storage: DriveStorage
    where: str
    """Where the files are, for the start-up log (no secret in it)."""


def build(settings: DriveSettings, *, store: DriveStore, storage: DriveStorage) -> App:
    return App(provisioner=Provisioner(store), storage=storage)


async def backend(settings: DriveSettings) -> Backend:
    """The adapters ``settings.storage`` names, ready to use (the root made, or the
    bucket checked)."""
    if settings.storage == "s3":
        host, secure = settings.s3_location()
        client = Minio(
            host,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=secure,
            region=settings.s3_region or None,
        )
        s3 = S3Storage(client, settings.s3_bucket)
        await s3.ensure_bucket(create=settings.s3_create_bucket)
        return Backend(store=s3, storage=s3, where=f"{settings.s3_endpoint}/{s3.bucket}")
    settings.root.mkdir(parents=True, exist_ok=True)
    return Backend(
        store=LocalDrive(settings.root),
        storage=LocalStorage(settings.root),
        where=str(settings.root),
    )


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
        chosen = await backend(settings)
        app = build(settings, store=chosen.store, storage=chosen.storage)
        if settings.health_port:
            health = HealthServer(settings.health_host, settings.health_port, ready.is_set)
            await health.start()
        log.info("drive started", storage=settings.storage, where=chosen.where)
        await follow_projects(bus.js, app.provisioner, ready, stop)
    finally:
        if health is not None:
            await health.stop()
        with contextlib.suppress(Exception):
            await bus.close()
