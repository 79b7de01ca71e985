"""Trace context from HTTP into the process: a pure ASGI middleware (no per-request
framework overhead). A caller's ``traceparent`` becomes the parent of a server span, and
everything published while handling the request carries it on (NATS headers).

When this process exports nothing (no SDK tracer provider installed, see
:func:`puras_common.telemetry.setup_tracing`), a span would be non-recording and carry
its parent's context unchanged; so the request pays only for what is observable: the
caller's context, attached when it sent one, and nothing at all when it did not.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from puras_common.telemetry import exporting, extract_context

__all__ = ["TraceContextMiddleware"]


class TraceContextMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._tracer = trace.get_tracer("puras.gateway")
        # The headers the configured propagators read (W3C: traceparent, tracestate,
        # baggage): a request with none of them carries no context.
        self._fields = frozenset(f.lower().encode() for f in propagate.get_global_textmap().fields)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier: dict[str, str] | None = None
        for k, v in scope["headers"]:
            if k in self._fields:
                if carrier is None:
                    carrier = {}
                carrier[k.decode("latin-1")] = v.decode("latin-1")
        if not exporting():
            if carrier is None:
                await self.app(scope, receive, send)
                return
            token = otel_context.attach(extract_context(carrier))
            try:
                await self.app(scope, receive, send)
            finally:
                otel_context.detach(token)
            return
        token = otel_context.attach(extract_context(carrier))
        try:
            with self._tracer.start_as_current_span(
                f"{scope['method']} {scope['path']}", kind=trace.SpanKind.SERVER
            ):
                await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)
