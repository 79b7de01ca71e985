"""``puras-drive``: per-project storage."""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop

from puras_common.logging import configure_logging
from puras_drive.bootstrap import run
from puras_drive.settings import DriveSettings


async def _main(settings: DriveSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def main() -> None:
    try:
        settings = DriveSettings()
    except ValueError as exc:
        print(f"puras-drive: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging("drive", settings.log_level, settings.log_format)
    uvloop.run(_main(settings))


if __name__ == "__main__":
    main()
