"""The gateway's composition root.

:func:`build` wires the use cases to the adapters it is given (real ones here, fakes in
unit tests: no NATS needed); :class:`Gateway` is the thin runtime that connects the real
adapters inside the HTTP app's lifespan, calls :func:`build`, and runs what runs beside
the API (the in-memory views, the checkpoint watcher, and the projectors when
``run_projectors`` keeps them in this process rather than in ``puras-gateway-projector``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from puras_common.bundles import BundleStore, NatsBundleStore
from puras_common.bus import Bus, PullConsumer, connect, ensure_durable, ensure_streams
from puras_common.clock import Clock, SystemClock
from puras_common.db import create_pool
from puras_common.events.subjects import CMD_GATEWAY_FILTER, CMDS_STREAM, GATEWAY_BUILDS_DURABLE
from puras_common.health import degraded_details
from puras_common.logging import get_logger
from puras_common.pricing import Registry, load_registry
from puras_common.projection.watch import CheckpointWatcher
from puras_gateway.adapters.audit import LogAuditor
from puras_gateway.adapters.billing import BillingCommands
from puras_gateway.adapters.builds import NatsBuildRequests
from puras_gateway.adapters.commands import SchedulerCommands
from puras_gateway.adapters.drive_proxy import HttpDrive
from puras_gateway.adapters.feedback import FeedbackReads
from puras_gateway.adapters.idempotency import IdempotencyKeys
from puras_gateway.adapters.job_log import JobLog
from puras_gateway.adapters.key_use import KeyLastUsedWriter
from puras_gateway.adapters.live_frames import LiveJobFrames
from puras_gateway.adapters.live_views import VIEWS_NAME, LiveViews
from puras_gateway.adapters.media_relay import NatsMediaRelay
from puras_gateway.adapters.projections import GATEWAY_PROJECTIONS, JobsProjection
from puras_gateway.adapters.read_models import ReadModels
from puras_gateway.adapters.secrets_table import SecretsTable
from puras_gateway.adapters.worker_views import WorkerViews
from puras_gateway.app.admin import AdminService
from puras_gateway.app.audit import AuditService
from puras_gateway.app.auth import Authenticator
from puras_gateway.app.deployments import DeploymentsService
from puras_gateway.app.drive import DriveService
from puras_gateway.app.feedback import FeedbackService
from puras_gateway.app.jobs import JobsService
from puras_gateway.app.media import MediaService
from puras_gateway.app.ports import (
    Auditor,
    Billing,
    BuildRequests,
    Commands,
    Drive,
    EventLog,
    FeedbackStore,
    IdempotencyStore,
    JobEvents,
    KeyUseRecorder,
    LiveFrames,
    MediaRelay,
    ProjectionWatch,
    ReadViews,
    SecretStore,
)
from puras_gateway.app.ports import LiveViews as LiveViewsPort
from puras_gateway.app.pricing import PricingService
from puras_gateway.app.secrets import SecretsService
from puras_gateway.app.usage import UsageService
from puras_gateway.entrypoints.build_outcomes import BuildOutcomeConsumer
from puras_gateway.projectors import GatewayProjectors, tables_exist
from puras_gateway.settings import GatewaySettings
from puras_gateway.workers import WorkerSlots

__all__ = ["App", "Gateway", "build"]

BUILD_OUTCOME_ACK_WAIT_S = 60.0
"""How long a gateway may take to record a build outcome before another gets it."""

log = get_logger(__name__)


@dataclass(frozen=True)
class App:
    """The gateway's use cases: everything the HTTP layer calls."""

    settings: GatewaySettings
    auth: Authenticator
    jobs: JobsService
    deployments: DeploymentsService
    admin: AdminService
    reads: ReadViews
    pricing: PricingService
    usage: UsageService
    audit: AuditService
    drive: DriveService
    media: MediaService
    secrets: SecretsService
    feedback: FeedbackService


def build(
    settings: GatewaySettings,
    *,
    events: EventLog,
    commands: Commands,
    billing: Billing,
    views: LiveViewsPort,
    reads: ReadViews,
    job_log: JobEvents,
    idempotency: IdempotencyStore | None,
    bundles: BundleStore,
    watcher: ProjectionWatch,
    key_use: KeyUseRecorder | None = None,
    clock: Clock | None = None,
    sync_jobs_view: Callable[[], Awaitable[bool]] | None = None,
    live: LiveFrames | None = None,
    pricing: Registry | None = None,
    auditor: Auditor | None = None,
    drive: Drive | None = None,
    media: MediaRelay | None = None,
    secrets: SecretStore | None = None,
    feedback: FeedbackStore | None = None,
    builds: BuildRequests | None = None,
) -> App:
    """The use cases over the given adapters (started already)."""
    s = settings
    clock = clock or SystemClock()
    jobs = JobsService(
        commands=commands,
        views=views,
        reads=reads,
        job_log=job_log,
        idempotency=idempotency,
        clock=clock,
        ping_s=s.sse_ping_s,
        read_wait_s=s.read_your_writes_s,
        sync_view=sync_jobs_view,
        live=live,
    )
    return App(
        settings=s,
        auth=Authenticator(views.keys, s.admin_token.get_secret_value(), key_use, clock),
        jobs=jobs,
        deployments=DeploymentsService(
            bus=events,
            store=bundles,
            views=views,
            reads=reads,
            watcher=watcher,
            wait_s=s.read_your_writes_s,
            requirements=s.requirements_policy(),
            builds=builds,
            build_wait_s=s.build_wait_s,
        ),
        admin=AdminService(
            bus=events,
            billing=billing,
            views=views,
            reads=reads,
            watcher=watcher,
            wait_s=s.read_your_writes_s,
            clock=clock,
        ),
        reads=reads,
        pricing=PricingService(pricing or load_registry(), s.margin_pct),
        usage=UsageService(reads, clock),
        audit=AuditService(auditor),
        drive=DriveService(drive, public_url=s.public_url, max_upload_bytes=s.max_upload_bytes),
        media=MediaService(media, drive, timeout_s=s.media_timeout_s, public_url=s.public_url),
        secrets=SecretsService(
            bus=events,
            store=secrets,
            watcher=watcher,
            keyring=s.secrets_keyring(),
            wait_s=s.read_your_writes_s,
        ),
        feedback=FeedbackService(
            bus=events,
            store=feedback or _NoFeedback(),
            watcher=watcher,
            find_job=jobs.get,
            wait_s=s.read_your_writes_s,
            clock=clock,
        ),
    )


class _NoFeedback:
    """No feedback store wired (unit tests of other use cases): no job has feedback."""

    async def list_feedback(self, project_id: str, job_id: str) -> list[dict[str, Any]]:
        return []

    async def get_feedback(
        self, project_id: str, job_id: str, end_user_id: str
    ) -> dict[str, Any] | None:
        return None


class Gateway:
    """The running gateway: real adapters connected in the HTTP app's lifespan."""

    def __init__(
        self, settings: GatewaySettings, *, worker: tuple[WorkerSlots, int] | None = None
    ) -> None:
        """``worker``: this gateway is worker ``i`` of several sharing a port, with the
        slots where each one's views stand (``puras_gateway.workers``)."""
        self.settings = settings
        self._worker = worker
        self.bus: Bus
        self.pool: asyncpg.Pool
        self.views: LiveViews
        self.watcher: CheckpointWatcher
        self.app: App
        self.drive: HttpDrive | None = None
        self._projectors: GatewayProjectors | None = None
        """This process's projectors (``run_projectors``); None: another process runs them."""
        self._tables = asyncio.Event()
        """Set once the projections' tables exist (the first read needs them)."""
        self._tasks: list[asyncio.Task[Any]] = []
        self._stop = asyncio.Event()
        self._started = False
        self._build_outcomes: BuildOutcomeConsumer | None = None

    async def start(self) -> None:
        s = self.settings
        self.bus = await connect(
            s.nats_url,
            name=f"puras-gateway{('-' + s.instance_id) if s.instance_id else ''}",
            credentials=s.nats_credentials(),
        )
        await ensure_streams(self.bus.js, replicas=s.stream_replicas)
        self.pool = await create_pool(s.database_dsn(), min_size=2, max_size=s.db_pool_size)
        key_use = KeyLastUsedWriter(self.pool)
        await key_use.setup()
        self.watcher = CheckpointWatcher(s.database_dsn())
        if s.run_projectors:
            self._projectors = GatewayProjectors(
                s.database_dsn(),
                self.bus.js,
                jobs_linger_s=s.jobs_projection_linger_s,
                on_commit=self.watcher.note,
            )
            self._projectors.start()
            # Tables must exist before the first read: wait until each projector is set up
            # (or another replica holds the lock, in which case the tables already exist).
            await self._projectors.wait_tables(self.pool)
            self._tables.set()
        else:
            # The projector process creates them; until it has, /readyz says so (a
            # gateway started before its projector is not an error).
            self._tasks.append(asyncio.create_task(self._await_tables()))
        await self.watcher.start()
        self.views = (
            LiveViews(self.bus, pool=self.pool)
            if self._worker is None
            else WorkerViews(self.bus, *self._worker, pool=self.pool)
        )
        self.watcher.on_quarantine_change(self.views.recheck)
        await self.views.start()
        idempotency = IdempotencyKeys(self.bus, replicas=s.stream_replicas)
        await idempotency.start()
        self.drive = HttpDrive(s.drive_url, s.drive_token.get_secret_value())
        self.app = build(
            s,
            events=self.bus,
            commands=SchedulerCommands(self.bus),
            billing=BillingCommands(self.bus, self.watcher),
            views=self.views,
            reads=ReadModels(self.pool),
            job_log=JobLog(self.bus),
            idempotency=idempotency,
            bundles=NatsBundleStore(self.bus.js, replicas=s.stream_replicas),
            watcher=self.watcher,
            key_use=key_use,
            clock=SystemClock(),
            sync_jobs_view=self._sync_jobs_view,
            live=LiveJobFrames(self.bus),
            auditor=LogAuditor(self.bus, s.database_dsn()),
            drive=self.drive,
            media=NatsMediaRelay(self.bus.nc),
            secrets=SecretsTable(self.pool),
            feedback=FeedbackReads(self.pool),
            builds=NatsBuildRequests(self.bus),
        )
        # The runners' reports of push-time builds (Z7), recorded by whichever gateway
        # takes one. Never dropped for a gateway being away: unlimited deliveries.
        await ensure_durable(
            self.bus.js,
            CMDS_STREAM,
            GATEWAY_BUILDS_DURABLE,
            filter_subject=CMD_GATEWAY_FILTER,
            ack_wait_s=BUILD_OUTCOME_ACK_WAIT_S,
            max_deliver=-1,
        )
        self._build_outcomes = BuildOutcomeConsumer(
            PullConsumer(self.bus.nc, CMDS_STREAM, GATEWAY_BUILDS_DURABLE, max_inflight=1),
            self.app.deployments,
        )
        await self._build_outcomes.start()
        if isinstance(self.views, WorkerViews):
            await self._join_workers(self.views)
        self._started = True
        log.info("gateway started", host=s.host, port=s.port)

    async def _join_workers(self, views: WorkerViews) -> None:
        # A worker shares the port: nothing routes around one that is not ready, so it
        # accepts no connection (uvicorn listens once this returns) until it is.
        while not (views.ready.is_set() and self._tables.is_set()):
            if not views.alive:
                raise RuntimeError(f"the views follower died at start: {views.failure}")
            await asyncio.sleep(0.02)
        if not await views.join(self.settings.read_your_writes_s):
            raise TimeoutError("the views did not catch up with the log")

    async def _await_tables(self) -> None:
        delay = 0.02
        while not await tables_exist(self.pool):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
        self._tables.set()

    async def _sync_jobs_view(self) -> bool:
        """Wait (bounded) until the jobs projection applied every job event stored before
        this call: a list shows what the client already saw (a job that just ended)."""
        wait_s = self.settings.read_your_writes_s
        local = self._projectors.runner(JobsProjection.name) if self._projectors else None
        if local is not None and local.following:
            return await local.sync(wait_s)
        # Projected elsewhere (the projector process, another replica): its checkpoint is
        # the sequence of the last job event it applied, heard by NOTIFY.
        try:
            last = max([await self.bus.last_subject_seq(f) for f in JobsProjection.filter_subjects])
        except Exception as exc:  # the list is served as it stands
            log.warning("cannot read the log's last job event", error=str(exc))
            return False
        return await self.watcher.wait_for(JobsProjection.name, last, wait_s)

    def readiness_problems(self) -> list[str]:
        out = []
        if not self._started:
            return ["startup"]
        if not self.bus.nc.is_connected:
            out.append("nats")
        if not self.views.ready.is_set():
            out.append("views")
        if not self.views.alive:
            # A dead follower would serve frozen keys and deployments: out of rotation.
            out.append("views-follower")
        if not self._tables.is_set():
            out.append("projections")
        return out

    def degraded(self) -> dict[str, Any]:
        """Why this gateway serves but needs an operator (empty: it does not).

        ``/readyz`` answers 200 ``{"status": "degraded", ...}`` with this.
        """
        if not self._started:
            return {}
        own = {p.name for p in GATEWAY_PROJECTIONS}  # billing reports the ledger's
        # Projectors of another process report their failures on its own /readyz.
        return degraded_details(
            {name: n for name, n in self.watcher.quarantined.items() if name in own},
            failing=self._projectors.failing() if self._projectors else None,
            skipped={VIEWS_NAME: self.views.unaccounted},
        )

    async def stop(self) -> None:
        self._stop.set()
        if self._build_outcomes is not None:
            await self._build_outcomes.stop()
        if self._projectors is not None:
            await self._projectors.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.drive is not None:
            with contextlib.suppress(Exception):
                await self.drive.aclose()
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
