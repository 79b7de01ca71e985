"""``puras-billing``: the ledger service."""

from __future__ import annotations

import asyncio
import signal
import sys

import uvloop

from puras_billing.bootstrap import run
from puras_billing.settings import BillingSettings
from puras_common.logging import configure_logging


async def _main(settings: BillingSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(settings, stop)


def main() -> None:
    try:
        settings = BillingSettings()
    except ValueError as exc:
        print(f"puras-billing: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging("billing", settings.log_level, settings.log_format)
    uvloop.run(_main(settings))


if __name__ == "__main__":
    main()
