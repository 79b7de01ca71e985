"""The gateway's composition root: the one place real clients are built and wired."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from puras_common.bundles import NatsBundleStore
from puras_common.bus import Bus, connect, ensure_streams
from puras_common.db import create_pool
from puras_common.logging import get_logger
from puras_common.projection import ProjectorRunner
from puras_common.projection.watch import CheckpointWatcher
from puras_gateway.adapters.idempotency import IdempotencyKeys
from puras_gateway.adapters.job_log import JobLog
from puras_gateway.adapters.live_views import LiveViews
from puras_gateway.adapters.projections import GATEWAY_PROJECTIONS
from puras_gateway.adapters.read_models import KeyUsage, ReadModels
from puras_gateway.app.admin import AdminService
from puras_gateway.app.auth import Authenticator
from puras_gateway.app.deployments import DeploymentsService
from puras_gateway.app.jobs import JobsService
from puras_gateway.settings import GatewaySettings

__all__ = ["Gateway"]

log = get_logger(__name__)


class Gateway:
    """Everything the HTTP layer calls, built at start-up inside the app's lifespan."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.bus: Bus
        self.pool: asyncpg.Pool
        self.views: LiveViews
        self.reads: ReadModels
        self.auth: Authenticator
        self.jobs: JobsService
        self.deployments: DeploymentsService
        self.admin: AdminService
        self.watcher: CheckpointWatcher
        self._projectors: list[ProjectorRunner] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()
        self._started = False

    async def start(self) -> None:
        s = self.settings
        self.bus = await connect(
            s.nats_url, name=f"puras-gateway{('-' + s.instance_id) if s.instance_id else ''}"
        )
        await ensure_streams(self.bus.js, replicas=s.stream_replicas)
        self.pool = await create_pool(s.database_url, min_size=2, max_size=s.db_pool_size)
        usage = KeyUsage(self.pool)
        await usage.setup()
        self.watcher = CheckpointWatcher(s.database_url)
        if s.run_projectors:
            for proj_cls in GATEWAY_PROJECTIONS:
                runner = ProjectorRunner(
                    s.database_url, self.bus.js, proj_cls(), on_commit=self.watcher.note
                )
                self._projectors.append(runner)
                self._tasks.append(asyncio.create_task(self._run_projector(runner)))
            # Tables must exist before the first read: wait until each projector is set up
            # (or another replica holds the lock, in which case the tables already exist).
            await self._tables_ready()
        await self.watcher.start()
        self.views = LiveViews(self.bus)
        await self.views.start()
        self.reads = ReadModels(self.pool)
        self.auth = Authenticator(self.views.keys, s.admin_token.get_secret_value(), usage)
        job_log = JobLog(self.bus)
        idempotency = IdempotencyKeys(self.bus, replicas=s.stream_replicas)
        await idempotency.start()
        self.jobs = JobsService(
            bus=self.bus,
            views=self.views,
            reads=self.reads,
            job_log=job_log,
            idempotency=idempotency,
            ping_s=s.sse_ping_s,
            read_wait_s=s.read_your_writes_s,
            sync_view=self._sync_jobs_view,
        )
        store = NatsBundleStore(self.bus.js, replicas=s.stream_replicas)
        self.deployments = DeploymentsService(
            bus=self.bus,
            store=store,
            views=self.views,
            reads=self.reads,
            watcher=self.watcher,
            wait_s=s.read_your_writes_s,
        )
        self.admin = AdminService(
            bus=self.bus,
            views=self.views,
            reads=self.reads,
            watcher=self.watcher,
            wait_s=s.read_your_writes_s,
        )
        self._started = True
        log.info("gateway started", host=s.host, port=s.port)

    async def _tables_ready(self) -> None:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            names = [p.projection.name for p in self._projectors]
            try:
                n = await self.pool.fetchval(
                    "SELECT count(*) FROM projection_checkpoints WHERE name = ANY($1::text[])",
                    names,
                )
            except asyncpg.UndefinedTableError:
                n = 0
            if n == len(names):
                return
            for t in self._tasks:
                if t.done() and t.exception() is not None:
                    raise RuntimeError("a projector failed at start") from t.exception()
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("projection tables were not created within 30s")
            await asyncio.sleep(0.02)

    async def _run_projector(self, runner: ProjectorRunner) -> None:
        try:
            await runner.run(self._stop)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A projector that cannot apply an event must not be skipped past (CONVENTIONS 7):
            # stop the process so it is restarted and redelivers from its checkpoint.
            log.exception(
                "projector failed; stopping the gateway", projection=runner.projection.name
            )
            import os
            import signal

            os.kill(os.getpid(), signal.SIGTERM)
            raise

    async def _sync_jobs_view(self) -> bool:
        for runner in self._projectors:
            if runner.projection.name == "jobs":
                return await runner.sync(self.settings.read_your_writes_s)
        return False

    def readiness_problems(self) -> list[str]:
        out = []
        if not self._started:
            return ["startup"]
        if not self.bus.nc.is_connected:
            out.append("nats")
        if not self.views.ready.is_set():
            out.append("views")
        return out

    async def stop(self) -> None:
        self._stop.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._started:
            await self.views.stop()
            await self.watcher.stop()
            await self.pool.close()
            await self.bus.close()

    @asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()
