"""Trace context from HTTP into the process: a pure ASGI middleware (no per-request
framework overhead). A caller's ``traceparent`` becomes the parent of a server span, and
everything published while handling the request carries it on (NATS headers)."""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from puras_common.telemetry import extract_context

__all__ = ["TraceContextMiddleware"]


class TraceContextMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._tracer = trace.get_tracer("puras.gateway")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        parent = extract_context(carrier)
        token = otel_context.attach(parent)
        try:
            with self._tracer.start_as_current_span(
                f"{scope['method']} {scope['path']}", kind=trace.SpanKind.SERVER
            ):
                await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
