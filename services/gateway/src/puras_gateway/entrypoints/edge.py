"""Refuses a request whose path, query or headers hold text the platform cannot keep
(Z9), before routing: a pure ASGI middleware, like the trace one, so the check costs no
framework overhead on the hot path. The rules are in :mod:`puras_gateway.domain.edge`."""

from __future__ import annotations

from typing import Any

import msgspec

from puras_gateway.domain.edge import check_request_target

__all__ = ["EdgeGuardMiddleware"]

_enc = msgspec.json.Encoder()


class EdgeGuardMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            error = check_request_target(raw_path, scope["query_string"], scope["headers"])
            if error is not None:
                body = _enc.encode(error.body())
                await send(
                    {
                        "type": "http.response.start",
                        "status": error.status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
