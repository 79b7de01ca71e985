"""``puras-gateway``: run the HTTP API under uvicorn (uvloop + httptools).

One process by default; with ``PURAS_GATEWAY_WORKERS`` > 1 a supervisor forks that many
workers sharing the port (:mod:`puras_gateway.entrypoints.supervise`).
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from puras_common.heap import settle_heap
from puras_common.logging import configure_logging, get_logger
from puras_common.settings import SettingsError
from puras_common.telemetry import setup_tracing
from puras_gateway.bootstrap import Gateway
from puras_gateway.entrypoints.http import create_app
from puras_gateway.entrypoints.supervise import bind, supervise
from puras_gateway.settings import GatewaySettings
from puras_gateway.workers import WorkerSlots


def _config(app: Any, settings: GatewaySettings) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def _worker(settings: GatewaySettings, sock: socket.socket) -> Callable[[int, WorkerSlots], int]:
    def run(i: int, slots: WorkerSlots) -> int:
        base = settings.instance_id
        s = settings.model_copy(update={"instance_id": f"{base}-w{i}" if base else f"w{i}"})
        setup_tracing("gateway")
        app = create_app(Gateway(s, worker=(slots, i)))
        settle_heap()
        uvicorn.Server(_config(app, s)).run(sockets=[sock])
        return 0

    return run


def main() -> None:
    try:
        settings = GatewaySettings()
    except (SettingsError, ValueError) as exc:
        print(f"puras-gateway: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging("gateway", settings.log_level, settings.log_format)
    log = get_logger(__name__)
    if settings.workers > 1:
        # Bound before the fork, tracing and every connection after it (in each worker).
        sock = bind(settings.host, settings.port)
        log.info("starting", port=settings.port, workers=settings.workers)
        raise SystemExit(supervise(settings.workers, _worker(settings, sock)))
    setup_tracing("gateway")
    app = create_app(Gateway(settings))
    settle_heap()
    log.info("starting", port=settings.port)
    uvicorn.Server(_config(app, settings)).run()


if __name__ == "__main__":
    main()
