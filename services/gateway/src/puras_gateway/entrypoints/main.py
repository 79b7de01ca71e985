"""``puras-gateway``: run the HTTP API under uvicorn (uvloop + httptools)."""

from __future__ import annotations

import sys

import uvicorn

from puras_common.logging import configure_logging, get_logger
from puras_common.settings import SettingsError
from puras_common.telemetry import setup_tracing
from puras_gateway.bootstrap import Gateway
from puras_gateway.entrypoints.http import create_app
from puras_gateway.settings import GatewaySettings


def main() -> None:
    try:
        settings = GatewaySettings()
    except (SettingsError, ValueError) as exc:
        print(f"puras-gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging("gateway", settings.log_level, settings.log_format)
    setup_tracing("gateway")
    app = create_app(Gateway(settings))
    get_logger(__name__).info("starting", port=settings.port)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
