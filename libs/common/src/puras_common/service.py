"""Running a service process: settings, logging, signals, exit codes. One way for all.

``run_service`` builds the settings (exit 2 with the reason when they are invalid),
configures logging and tracing, and runs ``body(settings, stop)`` on uvloop. The first
SIGTERM/SIGINT sets ``stop`` for a clean shutdown, bounded by ``grace_s``; a second one
cancels at once. A service that cannot reach NATS at start exits 1 with a clear message
so its supervisor restarts it, rather than hanging deaf to signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import uvloop

from puras_common.bus.client import NatsUnreachable
from puras_common.heap import settle_heap
from puras_common.logging import configure_logging, get_logger
from puras_common.settings import ServiceSettings
from puras_common.telemetry import setup_tracing

__all__ = ["StartupError", "run_service"]

S = TypeVar("S", bound=ServiceSettings)


class StartupError(RuntimeError):
    """The service cannot start (a dependency or declaration is wrong); exit 1."""


def run_service(
    settings_cls: type[S],
    body: Callable[[S, asyncio.Event], Awaitable[None]],
    *,
    grace_s: Callable[[S], float] = lambda _s: 30.0,
) -> None:
    name = settings_cls.service
    try:
        settings = settings_cls()
    except ValueError as exc:
        print(f"puras-{name}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc
    configure_logging(name, settings.log_level, settings.log_format)
    setup_tracing(name)
    log = get_logger(f"puras_{name}")
    settle_heap()
    try:
        uvloop.run(_serve(settings, body, grace_s(settings)))
    except (StartupError, NatsUnreachable) as exc:
        log.error("cannot start", error=str(exc))
        raise SystemExit(1) from exc
    except Exception as exc:
        log.exception("service failed", error=str(exc))
        raise SystemExit(1) from exc


async def _serve(
    settings: S, body: Callable[[S, asyncio.Event], Awaitable[None]], grace_s: float
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(body(settings, stop))

    def on_signal() -> None:
        if stop.is_set():
            task.cancel()  # a second signal: the operator does not want to wait
            return
        stop.set()
        loop.call_later(grace_s, task.cancel)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await task
    except asyncio.CancelledError:
        if not stop.is_set():
            raise
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
