"""The runner's composition root: the one place real clients and adapters are built."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import uv

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
from puras_common.events.subjects import WORK_STREAM, work_subject
from puras_common.health import HealthServer
from puras_common.logging import get_logger
from puras_common.service import StartupError as CommonStartupError
from puras_runner.adapters.bundle_cache import BundleCache
from puras_runner.adapters.engine import DeterministicEngine
from puras_runner.adapters.event_log import NatsJobEvents
from puras_runner.adapters.secrets import NoSecrets
from puras_runner.adapters.templates import TemplatePool
from puras_runner.adapters.venvs import VenvBuilder
from puras_runner.adapters.work import NatsWorkSource
from puras_runner.adapters.workdir import Workdirs
from puras_runner.app.handler import HandlerConfig, JobHandler
from puras_runner.app.ports import SecretsProvider
from puras_runner.app.service import RunnerService
from puras_runner.settings import RunnerSettings

__all__ = ["Runner", "StartupError", "build_engine", "run", "sdk_dir", "start_runner"]

log = get_logger(__name__)

SPARES_PER_TEMPLATE = 2
"""Children each template keeps forked ahead (at most one per slot)."""


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


def build_engine(settings: RunnerSettings, store: BundleStore) -> DeterministicEngine:
    data = settings.data_dir
    return DeterministicEngine(
        bundles=BundleCache(store, data / "bundles"),
        venvs=VenvBuilder(
            data / "venvs",
            python=settings.python,
            uv_bin=uv.find_uv_bin(),
            sdk_dir=sdk_dir(),
            cache_dir=data / "uv-cache",
        ),
        templates=TemplatePool(
            idle_s=settings.template_idle_s, spares=min(settings.slots, SPARES_PER_TEMPLATE)
        ),
        workdirs=Workdirs(data / "jobs", settings.drive_root, keep_per_project=settings.slots),
        memory_limit_mb=settings.memory_limit_mb,
        max_result_bytes=settings.max_result_bytes,
    )


@dataclass
class Runner:
    """A started runner: run it until ``stop`` is set, then it has cleaned up."""

    settings: RunnerSettings
    bus: Bus
    engine: DeterministicEngine
    handler: JobHandler
    service: RunnerService
    consumer: PullConsumer
    runner_id: str
    _closed: bool = field(default=False, init=False)

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
        return not self._closed and self.bus.nc.is_connected

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self.consumer.stop()
        await self.handler.drain()
        await self.engine.close()
        with contextlib.suppress(Exception):
            await self.bus.close()
        log.info("runner stopped", runner_id=self.runner_id)


async def start_runner(
    settings: RunnerSettings,
    *,
    secrets: SecretsProvider | None = None,
    clock: Clock | None = None,
) -> Runner:
    """Connect, declare what the runner needs, and start pulling work."""
    runner_id = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"
    try:
        bus = await connect(
            settings.nats_url,
            name=f"puras-runner-{runner_id}",
            initial_timeout=settings.connect_timeout_s,
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
        for sub in ("bundles", "venvs", "jobs"):
            (settings.data_dir / sub).mkdir(parents=True, exist_ok=True)
        engine = build_engine(settings, NatsBundleStore(bus.js, replicas=settings.stream_replicas))
        engine.workdirs.reset()
        handler = JobHandler(
            events=NatsJobEvents(bus),
            engine=engine,
            secrets=secrets or NoSecrets(),
            clock=clock or SystemClock(),
            config=HandlerConfig(
                runner_id=runner_id,
                max_attempts=settings.max_attempts,
                default_timeout_s=settings.default_timeout_s,
                heartbeat_s=settings.heartbeat_s,
                memory_limit_mb=settings.memory_limit_mb,
                max_result_bytes=settings.max_result_bytes,
                max_log_bytes=settings.max_log_bytes,
                log_flush_s=settings.log_flush_s,
            ),
        )
        consumer = PullConsumer(bus.nc, WORK_STREAM, settings.durable, max_inflight=settings.slots)
        await consumer.start()
        engine.templates.start_reaper()
    except BaseException:
        with contextlib.suppress(Exception):
            await bus.close()
        raise
    service = RunnerService(
        NatsWorkSource(consumer), handler, shutdown_grace_s=settings.shutdown_grace_s
    )
    log.info(
        "runner ready",
        runner_id=runner_id,
        pool=settings.pool,
        slots=settings.slots,
        data_dir=str(settings.data_dir),
    )
    return Runner(
        settings=settings,
        bus=bus,
        engine=engine,
        handler=handler,
        service=service,
        consumer=consumer,
        runner_id=runner_id,
    )


async def run(settings: RunnerSettings, stop: asyncio.Event) -> None:
    runner = await start_runner(settings)
    await runner.run(stop)
