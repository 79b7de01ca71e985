"""``puras-scheduler``: admission and dispatch of jobs."""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop

from puras_common.logging import configure_logging
from puras_common.telemetry import setup_tracing
from puras_scheduler.bootstrap import run
from puras_scheduler.settings import SchedulerSettings


async def _main(settings: SchedulerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def main() -> None:
    try:
        settings = SchedulerSettings()
    except ValueError as exc:
        print(f"puras-scheduler: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging("scheduler", settings.log_level, settings.log_format)
    setup_tracing("scheduler")
    uvloop.run(_main(settings))


if __name__ == "__main__":
    main()
