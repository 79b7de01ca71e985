"""``puras-runner``: runs jobs from ``work.<pool>``.

Exits non-zero when it cannot start (configuration, NATS unreachable, a stream or
consumer that does not match its declaration). SIGTERM / SIGINT stop it cleanly:
running jobs get ``shutdown_grace_s`` to finish, the rest are killed and given back.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop

from puras_common.logging import configure_logging, get_logger
from puras_common.telemetry import setup_tracing
from puras_runner.bootstrap import StartupError, start_runner
from puras_runner.settings import RunnerSettings

log = get_logger(__name__)


async def _main(settings: RunnerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = await start_runner(settings)
    await runner.run(stop)


def main() -> None:
    try:
        settings = RunnerSettings()
    except ValueError as exc:
        print(f"puras-runner: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    configure_logging("runner", settings.log_level, settings.log_format)
    setup_tracing("runner")
    try:
        uvloop.run(_main(settings))
    except StartupError as exc:
        log.error("runner cannot start", error=str(exc))
        sys.exit(1)
    except Exception as exc:
        log.exception("runner failed", error=str(exc))
        sys.exit(1)


if __name__ == "__main__":
    main()
