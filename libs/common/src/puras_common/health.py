"""A minimal ``/healthz`` + ``/readyz`` HTTP responder for services without an HTTP API.

Liveness answers 200 while the event loop runs; readiness answers 200 once the service
says so (e.g. its in-memory views caught up with the log) and 503 before.

Readiness has a third state, **degraded**: the service serves, but something needs an
operator, e.g. events quarantined by one of its projections (``puras admin quarantine
list``). It answers **200** with ``{"status": "degraded", ...details}``: a service that
keeps serving every other tenant stays in rotation (a 503 would take the whole API down
for one bad event, which is what quarantine exists to prevent); monitoring alerts on the
status field. :func:`degraded_details` builds the details both kinds of service share.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["HealthServer", "degraded_details"]


def degraded_details(
    quarantined: Mapping[str, int] | None = None,
    *,
    failing: Mapping[str, str] | None = None,
    skipped: Mapping[str, int] | None = None,
    refused: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What makes a service degraded; empty when nothing does.

    * ``quarantined``: unresolved quarantined events per projection (or view);
    * ``failing``: projectors retrying after an error that is not an event's fault;
    * ``skipped``: events an in-memory view skipped that are not yet on record;
    * ``refused``: work a consumer holds back and retries, by kind (billing's usage
      events it cannot price).
    """
    out: dict[str, Any] = {}
    q = {k: v for k, v in (quarantined or {}).items() if v > 0}
    if q:
        out["quarantined"] = dict(sorted(q.items()))
        out["quarantined_total"] = sum(q.values())
        out["hint"] = "puras admin quarantine list"
    if failing:
        out["projectors_failing"] = dict(sorted(failing.items()))
    s = {k: v for k, v in (skipped or {}).items() if v > 0}
    if s:
        out["views_skipped"] = dict(sorted(s.items()))
    if refused:
        out["refused"] = dict(sorted(refused.items()))
    return out


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        ready: Callable[[], bool],
        degraded: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._ready = ready
        self._degraded = degraded
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            parts = line.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else ""
            if path == "/healthz":
                status, body = "200 OK", b'{"status":"ok"}'
            elif path == "/readyz":
                ok = self._ready()
                status = "200 OK" if ok else "503 Service Unavailable"
                body = b'{"status":"ready"}' if ok else b'{"status":"starting"}'
                details = self._degraded() if ok and self._degraded is not None else None
                if details:
                    body = json.dumps({"status": "degraded", **details}).encode()
            else:
                status, body = (
                    "404 Not Found",
                    b'{"error":{"code":"not_found","message":"no such path"}}',
                )
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
