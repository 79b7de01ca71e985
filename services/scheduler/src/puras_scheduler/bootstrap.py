"""The scheduler's composition root.

:func:`build` wires the handlers to the ports it is given (NATS adapters in
:func:`run`, in-memory ones in unit tests); :func:`run` connects the real adapters,
builds, and serves the command loop until ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from puras_common.bus import Bus, PullConsumer, connect, ensure_durable, ensure_streams
from puras_common.clock import Clock, SystemClock
from puras_common.events.ids import SCHEDULER_DURABLE, runners_durable
from puras_common.events.subjects import CMD_SCHEDULER_FILTER, CMDS_STREAM
from puras_common.health import HealthServer
from puras_common.logging import get_logger
from puras_scheduler.adapters.dead_work import NatsDeadWork
from puras_scheduler.adapters.held import NatsHeldJobs
from puras_scheduler.adapters.job_log import NatsJobLog
from puras_scheduler.adapters.state import SchedulerState
from puras_scheduler.adapters.submits import NatsPendingSubmits
from puras_scheduler.adapters.work import NatsWorkQueue
from puras_scheduler.app.handlers import Scheduler
from puras_scheduler.app.lost_work import LostWork
from puras_scheduler.app.ports import (
    DeadWork,
    HeldJobs,
    JobLog,
    PendingSubmits,
    SchedulerViews,
    WorkQueue,
)
from puras_scheduler.entrypoints.advisories import LostWorkAdvisories
from puras_scheduler.entrypoints.consumer import run_commands
from puras_scheduler.settings import SchedulerSettings

__all__ = ["App", "build", "run"]

log = get_logger(__name__)


@dataclass(frozen=True)
class App:
    """The scheduler, wired: its handlers and the views they decide from."""

    scheduler: Scheduler
    lost: LostWork
    views: SchedulerViews

    async def start(self) -> None:
        """Follow the log, and once caught up release what credit allows."""
        await self.views.start(on_credit=self.scheduler.release_soon)
        # Decide nothing before the views hold what the log held at start.
        await self.views.ready.wait()
        await self.scheduler.release_all_funded()

    async def stop(self) -> None:
        await self.scheduler.drain()
        await self.views.stop()


def build(
    settings: SchedulerSettings,
    *,
    jobs: JobLog,
    work: WorkQueue,
    held: HeldJobs,
    dead: DeadWork,
    views: SchedulerViews,
    submits: PendingSubmits,
    clock: Clock,
) -> App:
    scheduler = Scheduler(
        jobs=jobs,
        work=work,
        held=held,
        views=views,
        submits=submits,
        clock=clock,
        view_wait_s=settings.view_wait_s,
    )
    return App(scheduler=scheduler, lost=LostWork(jobs=jobs, dead=dead, clock=clock), views=views)


async def run(settings: SchedulerSettings, stop: asyncio.Event) -> None:
    bus: Bus = await connect(
        settings.nats_url,
        name="puras-scheduler",
        initial_timeout=settings.connect_timeout_s,
        credentials=settings.nats_credentials(),
    )
    frozen: list[str] = []

    def on_views_died(failure: str) -> None:
        # Deciding from frozen views would admit against stale deployments and credit:
        # stop, and let the supervisor start a scheduler that reads the log afresh.
        frozen.append(failure)
        stop.set()

    health: HealthServer | None = None
    app: App | None = None
    consumer: PullConsumer | None = None
    advisories: LostWorkAdvisories | None = None
    try:
        await ensure_streams(bus.js, replicas=settings.stream_replicas)
        await ensure_durable(
            bus.js,
            CMDS_STREAM,
            SCHEDULER_DURABLE,
            filter_subject=CMD_SCHEDULER_FILTER,
            ack_wait_s=settings.cmd_ack_wait_s,
            max_deliver=settings.cmd_max_deliver,
        )
        views = SchedulerState(bus, on_death=on_views_died)
        app = build(
            settings,
            jobs=NatsJobLog(bus),
            work=NatsWorkQueue(bus, settings.pool),
            held=NatsHeldJobs(bus),
            dead=NatsDeadWork(bus),
            views=views,
            submits=NatsPendingSubmits(bus),
            clock=SystemClock(),
        )
        if settings.health_port:
            health = HealthServer(settings.health_host, settings.health_port, views.ready.is_set)
            await health.start()
        await app.start()
        advisories = LostWorkAdvisories(bus, runners_durable(settings.pool), app.lost)
        await advisories.start()
        consumer = PullConsumer(bus.nc, CMDS_STREAM, SCHEDULER_DURABLE, max_inflight=settings.batch)
        await consumer.start()
        log.info("scheduler ready", pool=settings.pool)
        await run_commands(consumer, app.scheduler, stop)
    finally:
        if advisories is not None:
            await advisories.stop()
        if consumer is not None:
            await consumer.stop()
        if app is not None:
            await app.stop()
        if health is not None:
            await health.stop()
        with contextlib.suppress(Exception):
            await bus.close()
    if frozen:
        raise RuntimeError(f"the scheduler's views stopped following the log: {frozen[0]}")
