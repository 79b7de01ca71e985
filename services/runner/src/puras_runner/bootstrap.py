"""The runner's composition root: the one place real clients and adapters are built.

:func:`build` wires a runner from adapters it is given (the job event log, the work
source, the bundle store, the deployment log: fakes in unit tests, NATS in
:func:`start_runner`) and the host's own pieces it makes from the settings (sandbox,
cgroups, egress proxies, venv and template caches). :func:`run` is what the
``puras-runner`` entrypoint calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import ipaddress
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import uv
from minio import Minio

from puras_common.bundles import BundleStore, NatsBundleStore
from puras_common.bus import (
    Bus,
    NatsUnreachable,
    PullConsumer,
    connect,
    ensure_durable,
    ensure_streams,
)
from puras_common.clock import Clock, SystemClock
from puras_common.events.subjects import (
    BUILDS_DURABLE,
    BUILDS_STREAM,
    WORK_STREAM,
    work_subject,
)
from puras_common.health import HealthServer
from puras_common.logging import get_logger
from puras_common.pricing import load_registry
from puras_common.service import StartupError as CommonStartupError
from puras_common.spend.book import KvSpendBook
from puras_runner.adapters.balances import LedgerBalances
from puras_runner.adapters.bundle_cache import BundleCache
from puras_runner.adapters.cgroups import CgroupLimits, JobCgroups
from puras_runner.adapters.deployment_facts import NatsBuildOutcomes, NatsDeploymentFacts
from puras_runner.adapters.deployment_log import NatsDeploymentLog
from puras_runner.adapters.drive_files import DriveFiles
from puras_runner.adapters.drive_sync import S3DriveSync
from puras_runner.adapters.egress import EgressPolicy, EgressProxy, index_hosts, index_ports
from puras_runner.adapters.engine import TemplateEngine
from puras_runner.adapters.event_log import NatsJobEvents
from puras_runner.adapters.fetch import SafeFetcher
from puras_runner.adapters.live import NatsLiveFeed
from puras_runner.adapters.media_routes import load_media_routes
from puras_runner.adapters.media_upstream import MediaUpstream
from puras_runner.adapters.model_routes import load_routes
from puras_runner.adapters.providers import ProviderEndpoint, SdkModelClients
from puras_runner.adapters.sandbox import Sandbox, SandboxUnavailable
from puras_runner.adapters.sandbox_session import TemplateSandboxes
from puras_runner.adapters.search import search_from_settings
from puras_runner.adapters.secrets import LogSecrets, NoSecrets
from puras_runner.adapters.templates import TemplatePool
from puras_runner.adapters.venvs import BuildSandbox, VenvBuilder, VenvBuildFailed
from puras_runner.adapters.workdir import Workdirs
from puras_runner.app.agent_engine import AgentConfig, AgenticEngine
from puras_runner.app.agent_tools import ToolboxConfig
from puras_runner.app.builds import DeploymentBuilds
from puras_runner.app.drive_changes import DriveChanges
from puras_runner.app.engines import DeterministicEngine, Engine, ProcessConfig
from puras_runner.app.handler import HandlerConfig, JobHandler
from puras_runner.app.media import MediaCalls, MediaFiles, Upstream
from puras_runner.app.ports import (
    Balances,
    DeploymentLog,
    Fetcher,
    JobEventLog,
    LiveFeed,
    ModelClients,
    Search,
    SecretsProvider,
    SpendBook,
    WorkSource,
)
from puras_runner.app.running import RunningJobs
from puras_runner.app.spend_guard import SpendGuard
from puras_runner.domain.agent.routes import RoutesError
from puras_runner.domain.media_routes import MediaRoutesError
from puras_runner.entrypoints.builds import BuildConsumer
from puras_runner.entrypoints.consumer import RunnerService
from puras_runner.entrypoints.media_rpc import MediaServer
from puras_runner.entrypoints.work import NatsWorkSource
from puras_runner.settings import RunnerSettings

__all__ = [
    "App",
    "StartupError",
    "build",
    "build_agent_engine",
    "build_processes",
    "build_template_engine",
    "run",
    "sdk_dir",
    "start_runner",
    "take_provider_environ",
]

log = get_logger(__name__)

SPARES_PER_TEMPLATE = 2
"""Children each template keeps forked ahead (at most one per slot)."""
PROVIDER_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "GEMINI_API_KEY",
)
"""The model SDKs' own variables (and the shipped Gemini route's key)."""


def take_provider_environ() -> dict[str, str]:
    """The model providers' endpoints and keys from the environment, removed from it:
    only the runner's model clients hold them, no process it starts inherits them.
    Route files may name more key variables (``api_key_env``); those are read the same
    way once the routes are loaded."""
    return {name: os.environ.pop(name) for name in PROVIDER_ENV if name in os.environ}


class StartupError(CommonStartupError):
    """The runner cannot start (no NATS, a stream or consumer mismatch, no SDK...)."""


def sdk_dir() -> Path:
    """The installed ``puras`` SDK package, copied into every deployment venv."""
    spec = importlib.util.find_spec("puras")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        if (Path(loc) / "__init__.py").is_file():
            return Path(loc)
    raise StartupError("the puras SDK package is not installed next to the runner")


def build_sandbox(settings: RunnerSettings) -> Sandbox | None:
    """The job sandbox, or ``None`` with ``sandbox=off``; a host that cannot give it
    stops the runner at start (jobs never fall back to running unconfined)."""
    if settings.sandbox == "off":
        log.warning(
            "job sandbox is OFF: jobs run unconfined as the runner's user (development only)"
        )
        return None
    try:
        sandbox = Sandbox(
            drive_root=settings.drive_root,
            jail_root=settings.data_dir / "jail-root",
            uid_base=settings.sandbox_uid_base,
            uid_span=settings.sandbox_uid_span,
            job_tmpfs_mb=settings.job_tmpfs_mb,
            egress=settings.job_egress == "public",
        )
        sandbox.prepare_host()
    except (SandboxUnavailable, OSError, RuntimeError) as exc:
        raise StartupError(f"the job sandbox is unavailable: {exc}") from exc
    return sandbox


def _allowed_networks(
    settings: RunnerSettings,
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    try:
        return tuple(ipaddress.ip_network(n, strict=False) for n in settings.egress_allow_networks)
    except ValueError as exc:
        raise StartupError(f"egress_allow_networks: {exc}") from exc


def build_proxies(
    settings: RunnerSettings, sandbox: Sandbox | None
) -> tuple[EgressProxy | None, EgressProxy | None]:
    """The egress proxies of the sandbox: (jobs, builds). Jobs reach public addresses
    (``None`` with ``job_egress=off``), builds the package indexes only."""
    if sandbox is None:
        return None, None
    networks = _allowed_networks(settings)
    builds = EgressProxy(
        EgressPolicy(
            allow_networks=networks,
            hosts=index_hosts(settings.build_index_urls),
            ports=frozenset({80, 443} | index_ports(settings.build_index_urls)),
            check_addresses=False,
        ),
        name="builds",
    )
    jobs = None
    if sandbox.egress:
        jobs = EgressProxy(
            EgressPolicy(
                allow_networks=networks,
                ports=frozenset(settings.egress_ports),
                platform=settings.api_destinations(),
            ),
            name="jobs",
        )
    return jobs, builds


def build_cgroups(settings: RunnerSettings) -> JobCgroups | None:
    if not settings.cgroups:
        return None
    limits = CgroupLimits(
        memory_bytes=settings.memory_limit_mb * 1024 * 1024,
        pids=settings.job_max_processes,
        cpus=settings.job_cpus,
    )
    return JobCgroups.detect(socket.gethostname(), limits)


def build_template_engine(
    settings: RunnerSettings,
    *,
    sandbox: Sandbox | None = None,
    cgroups: JobCgroups | None = None,
    egress: tuple[EgressProxy | None, EgressProxy | None] = (None, None),
) -> TemplateEngine:
    """The deterministic engine's processes: venvs, templates and workdirs under
    ``data_dir``, confined by ``sandbox`` and ``cgroups``."""
    data = settings.data_dir
    return TemplateEngine(
        venvs=VenvBuilder(
            data / "venvs",
            python=settings.python,
            uv_bin=uv.find_uv_bin(),
            sdk_dir=sdk_dir(),
            cache_dir=data / "uv-cache",
            build_sandbox=(
                BuildSandbox(
                    sandbox=sandbox,
                    egress=egress[1],
                    index_urls=settings.build_index_urls,
                    timeout_s=settings.build_timeout_s,
                    cgroups=cgroups,
                    limits=CgroupLimits(
                        memory_bytes=settings.build_memory_mb * 1024 * 1024,
                        pids=1024,
                        cpus=settings.job_cpus,
                    ),
                )
                if sandbox is not None and egress[1] is not None
                else None
            ),
        ),
        templates=TemplatePool(
            idle_s=settings.template_idle_s,
            spares=min(settings.slots, SPARES_PER_TEMPLATE),
            cgroups=cgroups,
            egress=egress[0],
        ),
        workdirs=Workdirs(data / "jobs", settings.drive_root, keep_per_project=settings.slots),
        memory_limit_mb=settings.memory_limit_mb,
        max_result_bytes=settings.max_result_bytes,
        sandbox=sandbox,
        # Checked here too: with sandbox=off no proxy parses them, the SDK would.
        allow_networks=[str(n) for n in _allowed_networks(settings)],
    )


def build_processes(settings: RunnerSettings) -> TemplateEngine:
    """The job processes' engine, confined as ``settings`` say (sandbox, cgroups, egress
    proxies): the deterministic engine's, and the agent runs' sandbox processes."""
    sandbox = build_sandbox(settings)
    cgroups = build_cgroups(settings)
    processes = build_template_engine(
        settings, sandbox=sandbox, cgroups=cgroups, egress=build_proxies(settings, sandbox)
    )
    log.info(
        "job isolation",
        sandbox="namespaces+seccomp, uid per project" if sandbox is not None else "off",
        limits=cgroups.describe() if cgroups is not None else "per-job cgroups disabled",
    )
    return processes


def build_agent_engine(
    settings: RunnerSettings,
    *,
    processes: TemplateEngine,
    secrets: SecretsProvider,
    live: LiveFeed,
    models: ModelClients | None = None,
    fetcher: Fetcher | None = None,
    search: Search | None = None,
    provider_environ: dict[str, str] | None = None,
    spend: SpendBook | None = None,
    balances: Balances | None = None,
    clock: Clock | None = None,
    media: MediaCalls | None = None,
) -> AgenticEngine:
    """The agentic engine: model clients from the settings and the providers' variables
    (``provider_environ``), tools' sandbox on the deterministic engine's templates, the
    SSRF-safe fetcher and the configured search backend."""
    try:
        routes = load_routes(settings.model_routes_file)
    except RoutesError as exc:
        raise StartupError(str(exc)) from exc
    environ = dict(provider_environ or {})
    for route in routes:
        if route.api_key_env and route.api_key_env not in environ:
            value = os.environ.pop(route.api_key_env, None)
            if value is not None:
                environ[route.api_key_env] = value
    if models is None:
        models = SdkModelClients(
            anthropic_endpoint=ProviderEndpoint(
                base_url=settings.anthropic_base_url or None,
                api_key=settings.anthropic_api_key.get_secret_value() or None,
            ),
            openai_endpoint=ProviderEndpoint(
                base_url=settings.openai_base_url or None,
                api_key=settings.openai_api_key.get_secret_value() or None,
            ),
            max_retries=settings.provider_max_retries,
            timeout_s=settings.provider_timeout_s,
            environ=environ,
        )
    if search is None:
        try:
            search = search_from_settings(
                settings.search_backend,
                settings.searxng_url,
                settings.brave_api_key.get_secret_value(),
            )
        except ValueError as exc:
            raise StartupError(f"search: {exc}") from exc
    return AgenticEngine(
        models=models,
        routes=routes,
        sandboxes=TemplateSandboxes(processes),
        fetcher=fetcher or SafeFetcher(allow_networks=settings.egress_allow_networks),
        search=search,
        live=live,
        secrets=secrets,
        spend=spend,
        balances=balances,
        clock=clock,
        media=media,
        config=AgentConfig(
            default_model=settings.agent_default_model,
            max_steps=settings.agent_max_steps,
            default_timeout_s=settings.agent_timeout_s,
            tools=ToolboxConfig(
                user_tool_timeout_s=settings.agent_tool_timeout_s,
                max_tool_result_bytes=settings.max_result_bytes,
            ),
            margin_pct=settings.margin_pct,
        ),
    )


def build_drive_sync(settings: RunnerSettings, sandbox: Sandbox | None) -> S3DriveSync | None:
    """With the S3 backend, what keeps the jobs' drive folders in step with the bucket."""
    if settings.drive_storage != "s3":
        return None
    try:
        host, secure = settings.drive_s3()
    except ValueError as exc:
        raise StartupError(str(exc)) from exc
    client = Minio(
        host,
        access_key=settings.drive_s3_access_key.get_secret_value(),
        secret_key=settings.drive_s3_secret_key.get_secret_value(),
        secure=secure,
        region=settings.drive_s3_region or None,
    )
    return S3DriveSync(
        client,
        settings.drive_s3_bucket,
        drive_root=settings.drive_root,
        state_dir=settings.data_dir / "drive-sync",
        sandbox=sandbox,
    )


def build_media(
    settings: RunnerSettings,
    *,
    files: MediaFiles | None,
    upstream: Upstream | None,
    spend: SpendBook | None,
    clock: Clock,
) -> MediaCalls | None:
    """Media calls (S2): the upstream from the settings unless one is given (none
    configured: calls answer so), the slug table, the prices. ``None`` without ``files``."""
    if files is None:
        return None
    try:
        routes = load_media_routes(settings.media_routes_file)
    except (MediaRoutesError, OSError) as exc:
        raise StartupError(f"media routes: {exc}") from exc
    if upstream is None and settings.media_upstream_key.get_secret_value():
        try:
            upstream = MediaUpstream(
                base_url=settings.media_upstream_url,
                key=settings.media_upstream_key.get_secret_value(),
                timeout_s=settings.media_timeout_s,
                max_output_bytes=settings.media_max_output_bytes,
                allow_networks=settings.egress_allow_networks,
            )
        except ValueError as exc:
            raise StartupError(f"media upstream: {exc}") from exc
    scratch = settings.data_dir / "media"
    scratch.mkdir(parents=True, exist_ok=True)
    return MediaCalls(
        upstream=upstream,
        routes=routes,
        pricing=load_registry(),
        margin_pct=settings.margin_pct,
        spend=SpendGuard(spend, clock, AgentConfig().spend_hold_s),
        files=files,
        scratch=scratch,
    )


@dataclass
class App:
    """A built runner: :meth:`start` it, run it until ``stop`` is set, then it has
    cleaned up (and closed what it was given, through ``on_close``)."""

    settings: RunnerSettings
    runner_id: str
    bundles: BundleCache
    engine: TemplateEngine
    """The deterministic engine's processes (templates, workdirs)."""
    agents: AgenticEngine
    """The agentic engine (its model clients' connections are closed with the runner)."""
    handler: JobHandler
    service: RunnerService
    running: RunningJobs
    """The attempts running here, with their job tokens (media calls)."""
    media: MediaCalls | None
    """Media calls of the jobs (``None``: nothing to save outputs with)."""
    connected: Callable[[], bool]
    """Whether the adapters still reach NATS (readiness)."""
    on_close: Callable[[], Awaitable[None]]
    _closed: bool = field(default=False, init=False)

    def start(self) -> None:
        """Make the data folders, sweep what a dead run left, start the idle reaper."""
        for sub in ("bundles", "venvs", "jobs"):
            (self.settings.data_dir / sub).mkdir(parents=True, exist_ok=True)
        self.engine.workdirs.reset()
        self.engine.templates.start_reaper()

    async def run(self, stop: asyncio.Event) -> None:
        health = None
        if self.settings.health_port:
            # Ready while connected and pulling; liveness is the event loop answering.
            health = HealthServer(self.settings.health_host, self.settings.health_port, self._ready)
            await health.start()
        try:
            await self.service.run(stop)
        finally:
            if health is not None:
                await health.stop()
            await self.close()

    def _ready(self) -> bool:
        return not self._closed and self.connected()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.handler.drain()
        await self.engine.close()
        with contextlib.suppress(Exception):
            await self.agents.close()
        with contextlib.suppress(Exception):
            await self.on_close()
        log.info("runner stopped", runner_id=self.runner_id)


async def _nothing() -> None:
    return None


def build(
    settings: RunnerSettings,
    *,
    events: JobEventLog,
    work: WorkSource,
    bundle_store: BundleStore,
    deployment_log: DeploymentLog,
    runner_id: str,
    live: LiveFeed,
    clock: Clock | None = None,
    secrets: SecretsProvider | None = None,
    models: ModelClients | None = None,
    fetcher: Fetcher | None = None,
    search: Search | None = None,
    provider_environ: dict[str, str] | None = None,
    spend: SpendBook | None = None,
    balances: Balances | None = None,
    drive_files: Callable[[Sandbox | None], DriveFiles] | None = None,
    media_upstream: Upstream | None = None,
    connected: Callable[[], bool] = lambda: True,
    on_close: Callable[[], Awaitable[None]] = _nothing,
) -> App:
    """A runner over the given adapters; the host's isolation comes from ``settings``
    (a host that cannot give the sandbox stops the runner here: :class:`StartupError`)."""
    processes = build_processes(settings)
    bundles = BundleCache(bundle_store, deployment_log, settings.data_dir / "bundles")
    secrets = secrets or NoSecrets()
    clock = clock or SystemClock()
    files = drive_files(processes.sandbox) if drive_files is not None else None
    media = build_media(
        settings,
        files=files,
        upstream=media_upstream,
        spend=spend,
        clock=clock,
    )
    # One engine per skill kind; a kind with none fails its jobs with a clear error.
    agents = build_agent_engine(
        settings,
        processes=processes,
        secrets=secrets,
        live=live,
        models=models,
        fetcher=fetcher,
        search=search,
        provider_environ=provider_environ,
        spend=spend,
        balances=balances,
        clock=clock,
        media=media,
    )
    engines: dict[str, Engine] = {
        "deterministic": DeterministicEngine(
            processes,
            secrets=secrets,
            config=ProcessConfig(
                default_timeout_s=settings.default_timeout_s,
                memory_limit_mb=settings.memory_limit_mb,
                max_result_bytes=settings.max_result_bytes,
                max_processes=(
                    settings.job_max_processes
                    if processes.templates.cgroups is not None
                    and processes.templates.cgroups.enabled
                    else 0
                ),
            ),
        ),
        "agentic": agents,
    }
    running = RunningJobs(runner_id, settings.api_url)
    handler = JobHandler(
        events=events,
        deployments=bundles,
        engines=engines,
        running=running,
        drive_changes=(
            DriveChanges(files, files, build_drive_sync(settings, processes.sandbox))
            if files is not None
            else None
        ),
        clock=clock,
        config=HandlerConfig(
            runner_id=runner_id,
            max_attempts=settings.max_attempts,
            heartbeat_s=settings.heartbeat_s,
            max_log_bytes=settings.max_log_bytes,
            log_flush_s=settings.log_flush_s,
        ),
    )
    return App(
        settings=settings,
        runner_id=runner_id,
        bundles=bundles,
        engine=processes,
        agents=agents,
        handler=handler,
        service=RunnerService(work, handler, shutdown_grace_s=settings.shutdown_grace_s),
        running=running,
        media=media,
        connected=connected,
        on_close=on_close,
    )


async def start_runner(
    settings: RunnerSettings,
    *,
    secrets: SecretsProvider | None = None,
    clock: Clock | None = None,
    provider_environ: dict[str, str] | None = None,
) -> App:
    """Connect, declare what the runner needs, build it over NATS, start pulling work."""
    runner_id = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"
    try:
        bus = await connect(
            settings.nats_url,
            name=f"puras-runner-{runner_id}",
            initial_timeout=settings.connect_timeout_s,
            credentials=settings.nats_credentials(),
        )
    except NatsUnreachable as exc:
        raise StartupError(str(exc)) from exc
    try:
        await ensure_streams(bus.js, replicas=settings.stream_replicas)
        await ensure_durable(
            bus.js,
            WORK_STREAM,
            settings.durable,
            filter_subject=work_subject(settings.pool),
            ack_wait_s=settings.ack_wait_s,
            max_deliver=settings.max_attempts + 1,
        )
        consumer = PullConsumer(bus.nc, WORK_STREAM, settings.durable, max_inflight=settings.slots)
        live = NatsLiveFeed(bus)
        builds: BuildConsumer | None = None

        async def close_nats() -> None:
            if builds is not None:
                await builds.stop()
            with contextlib.suppress(Exception):
                await consumer.stop()
            with contextlib.suppress(Exception):
                await live.close()  # frames handed over are sent before the bus goes
            await bus.close()

        app = build(
            settings,
            events=NatsJobEvents(bus),
            work=NatsWorkSource(consumer),
            bundle_store=NatsBundleStore(bus.js, replicas=settings.stream_replicas),
            deployment_log=NatsDeploymentLog(bus),
            runner_id=runner_id,
            live=live,
            clock=clock,
            secrets=secrets
            or LogSecrets(bus, settings.secrets_keyring(), ttl_s=settings.secrets_ttl_s),
            provider_environ=provider_environ,
            spend=KvSpendBook(bus, replicas=settings.stream_replicas),
            balances=LedgerBalances(bus),
            drive_files=lambda sandbox: DriveFiles(bus, settings.drive_root, sandbox),
            connected=lambda: bus.nc.is_connected,
            on_close=close_nats,
        )
        app.start()
        if app.media is not None:
            media_server = MediaServer(bus.nc, app.running, app.media)
            await media_server.start()
        if settings.build_slots:
            builds = await start_builds(settings, bus, app)
        await consumer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await bus.close()
        raise
    log.info(
        "runner ready",
        runner_id=runner_id,
        pool=settings.pool,
        slots=settings.slots,
        data_dir=str(settings.data_dir),
    )
    return app


async def start_builds(settings: RunnerSettings, bus: Bus, app: App) -> BuildConsumer:
    """Take push-time builds (Z7) from the shared durable, into this runner's venv store."""
    await ensure_durable(
        bus.js,
        BUILDS_STREAM,
        BUILDS_DURABLE,
        filter_subject="build.>",
        # A build holds its request for as long as it may take (then it is redelivered).
        ack_wait_s=settings.build_timeout_s + 120,
        max_deliver=settings.max_attempts + 1,
    )
    builds = BuildConsumer(
        PullConsumer(bus.nc, BUILDS_STREAM, BUILDS_DURABLE, max_inflight=settings.build_slots),
        DeploymentBuilds(
            facts=NatsDeploymentFacts(bus),
            outcomes=NatsBuildOutcomes(bus),
            bundles=app.bundles,
            venvs=app.engine.venvs,
            build_failed=VenvBuildFailed,
        ),
        max_attempts=settings.max_attempts,
    )
    await builds.start()
    return builds


async def run(settings: RunnerSettings, stop: asyncio.Event) -> None:
    # Read once: no process the runner starts (a requirements build, a job) inherits them.
    settings.scrub_secrets_from_environ()
    app = await start_runner(settings, provider_environ=take_provider_environ())
    await app.run(stop)
