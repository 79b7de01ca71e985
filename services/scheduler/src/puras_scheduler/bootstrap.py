"""The scheduler's composition root."""

from __future__ import annotations

import asyncio
import contextlib

from puras_common.bus import Bus, PullConsumer, connect, ensure_durable, ensure_streams
from puras_common.clock import SystemClock
from puras_common.events.subjects import CMDS_STREAM
from puras_common.health import HealthServer
from puras_common.logging import get_logger
from puras_scheduler.adapters.held import HeldJobs
from puras_scheduler.adapters.lost_work import LostWorkWatcher
from puras_scheduler.adapters.state import SchedulerState
from puras_scheduler.app.handlers import Scheduler
from puras_scheduler.entrypoints.consumer import run_commands
from puras_scheduler.settings import SchedulerSettings

__all__ = ["CMD_CONSUMER", "run"]

log = get_logger(__name__)

CMD_CONSUMER = "scheduler"


async def run(settings: SchedulerSettings, stop: asyncio.Event) -> None:
    bus: Bus = await connect(
        settings.nats_url,
        name="puras-scheduler",
        initial_timeout=settings.connect_timeout_s,
        credentials=settings.nats_credentials(),
    )
    health: HealthServer | None = None
    state: SchedulerState | None = None
    consumer: PullConsumer | None = None
    lost: LostWorkWatcher | None = None
    try:
        await ensure_streams(bus.js, replicas=settings.stream_replicas)
        await ensure_durable(
            bus.js,
            CMDS_STREAM,
            CMD_CONSUMER,
            filter_subject="cmd.scheduler.>",
            ack_wait_s=settings.cmd_ack_wait_s,
            max_deliver=settings.cmd_max_deliver,
        )
        scheduler_ref: list[Scheduler] = []

        def on_credit(project_id: str) -> None:
            if scheduler_ref:
                scheduler_ref[0].release_soon(project_id)

        state = SchedulerState(bus, on_credit)
        await state.start()
        if settings.health_port:
            health = HealthServer(settings.health_host, settings.health_port, state.ready.is_set)
            await health.start()
        scheduler = Scheduler(
            bus=bus,
            state=state,
            held=HeldJobs(bus),
            clock=SystemClock(),
            pool=settings.pool,
            view_wait_s=settings.view_wait_s,
        )
        scheduler_ref.append(scheduler)
        # Decide nothing before the views hold what the log held at start.
        await state.ready.wait()
        await scheduler.release_all_funded()
        lost = LostWorkWatcher(bus, SystemClock(), f"runners-{settings.pool}")
        await lost.start()
        consumer = PullConsumer(bus.nc, CMDS_STREAM, CMD_CONSUMER, max_inflight=settings.batch)
        await consumer.start()
        log.info("scheduler ready", pool=settings.pool)
        await run_commands(consumer, scheduler, stop)
        await scheduler.drain()
    finally:
        if lost is not None:
            await lost.stop()
        if consumer is not None:
            await consumer.stop()
        if state is not None:
            await state.stop()
        if health is not None:
            await health.stop()
        with contextlib.suppress(Exception):
            await bus.close()
