"""The drive's composition root: a drive for every project in the log, the file table
folded from the drive's events, and the drive's HTTP API (SPEC D2-D7).

The service owns the storage (the local filesystem, or an S3 bucket with
``PURAS_DRIVE_STORAGE=s3``), makes sure each project has its drive the moment the project
exists, and serves the API the gateway forwards ``/v1/drive/*`` to. :func:`build` wires
the handlers to the adapters it is given; :func:`backend` builds the configured
storage; :func:`run` connects everything and serves until ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI
from minio import Minio

from puras_common.bus import connect, ensure_streams
from puras_common.db import create_pool
from puras_common.health import HealthServer, degraded_details
from puras_common.logging import get_logger
from puras_common.projection import ProjectorRunner
from puras_common.projection.watch import CheckpointWatcher
from puras_drive.adapters.drive_log import NatsDriveLog
from puras_drive.adapters.file_index import PgFileIndex
from puras_drive.adapters.local_fs import LocalDrive
from puras_drive.adapters.local_fs_storage import LocalStorage
from puras_drive.adapters.projection import DriveFilesProjection
from puras_drive.adapters.s3_storage import S3Storage
from puras_drive.app.ports import DriveLog, DriveStorage, DriveStore, FileIndex, ProjectionWatch
from puras_drive.app.provisioning import Provisioner
from puras_drive.app.service import DriveService, Limits
from puras_drive.entrypoints.http import create_app
from puras_drive.entrypoints.projects import follow_projects
from puras_drive.settings import MAX_SIGN_TTL_S, SHARE_TTL_S, DriveSettings

__all__ = ["App", "Backend", "TableWatch", "backend", "build", "run", "signing_key"]

log = get_logger(__name__)


@dataclass(frozen=True)
class App:
    """The drive, wired: the handlers the log's events and the API's calls go to."""

    provisioner: Provisioner
    storage: DriveStorage
    service: DriveService
    http: FastAPI


@dataclass(frozen=True)
class Backend:
    """The configured storage: what provisions a project's drive, and what holds its
    files."""

    store: DriveStore
    storage: DriveStorage
    where: str
    """Where the files are, for the start-up log (no secret in it)."""


class TableWatch:
    """:class:`ProjectionWatch` of the file table through the projection checkpoints
    (any replica's projector: only one of them folds at a time)."""

    def __init__(self, watcher: CheckpointWatcher) -> None:
        self._watcher = watcher

    async def wait_for(self, seq: int, timeout: float) -> bool:
        return await self._watcher.wait_for(DriveFilesProjection.name, seq, timeout)


def signing_key(settings: DriveSettings) -> bytes:
    """The links' HMAC key; in dev without one, a random key of this process (said
    once, so nobody wonders why links stop working after a restart)."""
    configured = settings.signing_secret.get_secret_value()
    if configured:
        return configured.encode()
    log.warning("no PURAS_DRIVE_SIGNING_SECRET: signed links last until the drive restarts")
    return secrets.token_bytes(32)


def build(
    settings: DriveSettings,
    *,
    store: DriveStore,
    storage: DriveStorage,
    drive_log: DriveLog,
    index: FileIndex,
    watch: ProjectionWatch,
    ready: asyncio.Event | None = None,
    signing_secret: bytes | None = None,
) -> App:
    service = DriveService(
        storage=storage,
        log=drive_log,
        index=index,
        watch=watch,
        signing_secret=signing_secret if signing_secret is not None else signing_key(settings),
        limits=Limits(
            max_upload_bytes=settings.max_upload_bytes,
            sign_ttl_s=settings.sign_ttl_s,
            max_sign_ttl_s=MAX_SIGN_TTL_S,
            share_ttl_s=SHARE_TTL_S,
            read_your_writes_s=settings.read_your_writes_s,
            list_sync_s=settings.list_sync_s,
        ),
    )
    is_ready = ready.is_set if ready is not None else (lambda: True)
    http = create_app(
        service,
        internal_token=settings.internal_token.get_secret_value(),
        ready=is_ready,
    )
    return App(provisioner=Provisioner(store), storage=storage, service=service, http=http)


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


async def run(
    settings: DriveSettings, stop: asyncio.Event, *, chosen: Backend | None = None
) -> None:
    """Serve until ``stop``; ``chosen`` replaces the configured storage (tests)."""
    bus = await connect(
        settings.nats_url,
        name="puras-drive",
        initial_timeout=settings.connect_timeout_s,
        credentials=settings.nats_credentials(),
    )
    provisioned = asyncio.Event()
    health: HealthServer | None = None
    watcher: CheckpointWatcher | None = None
    pool = None
    try:
        await ensure_streams(bus.js, replicas=settings.stream_replicas)
        if chosen is None:
            chosen = await backend(settings)
        dsn = settings.database_dsn()
        pool = await create_pool(dsn, max_size=5)
        watcher = CheckpointWatcher(dsn)
        await watcher.start()
        runner = ProjectorRunner(dsn, bus.js, DriveFilesProjection(), on_commit=watcher.note)
        ready = _Ready(provisioned, runner.caught_up)
        app = build(
            settings,
            store=chosen.store,
            storage=chosen.storage,
            drive_log=NatsDriveLog(bus),
            index=PgFileIndex(pool),
            watch=TableWatch(watcher),
            ready=ready.event,
        )
        if settings.health_port:
            health = HealthServer(
                settings.health_host,
                settings.health_port,
                ready.event.is_set,
                degraded=lambda: degraded_details({runner.projection.name: runner.quarantined}),
            )
            await health.start()
        server = _Server(
            uvicorn.Config(
                app.http,
                host=settings.http_host,
                port=settings.http_port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        log.info(
            "drive started",
            storage=settings.storage,
            where=chosen.where,
            http=f"{settings.http_host}:{settings.http_port}",
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                follow_projects(bus.js, app.provisioner, provisioned, stop), name="drive-projects"
            )
            tasks.create_task(runner.run(stop), name="drive-projection")
            tasks.create_task(ready.watch(stop), name="drive-ready")
            tasks.create_task(server.serve(), name="drive-http")
            await stop.wait()
            server.should_exit = True
    finally:
        if health is not None:
            await health.stop()
        if watcher is not None:
            await watcher.stop()
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.close()
        with contextlib.suppress(Exception):
            await bus.close()


class _Server(uvicorn.Server):
    """uvicorn, without its signal handlers: the service's own set ``stop`` (uvicorn's
    would replace them and raise the signal again once it ends)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _Ready:
    """Ready once every project has its drive and the file table has caught up."""

    def __init__(self, provisioned: asyncio.Event, caught_up: asyncio.Event) -> None:
        self._provisioned = provisioned
        self._caught_up = caught_up
        self.event = asyncio.Event()

    async def watch(self, stop: asyncio.Event) -> None:
        both = asyncio.ensure_future(self._both())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([both, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            both.cancel()
            stopped.cancel()

    async def _both(self) -> None:
        await self._provisioned.wait()
        await self._caught_up.wait()
        self.event.set()
