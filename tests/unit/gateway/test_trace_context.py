"""A caller's trace context reaches what the gateway publishes while handling the
request, also when this process exports nothing (no span is made then)."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from puras_common.telemetry import inject_headers
from puras_gateway.entrypoints.tracing import TraceContextMiddleware

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def _published_headers(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The trace headers a publish inside the handler would carry."""
    seen: dict[str, str] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(inject_headers({}))

    scope = {"type": "http", "method": "POST", "path": "/v1/jobs", "headers": headers}
    await TraceContextMiddleware(app)(scope, None, None)
    return seen


async def test_the_callers_traceparent_is_carried_on() -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    got = await _published_headers(
        [(b"traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01".encode())]
    )
    assert TRACE_ID in got["traceparent"]


async def test_a_request_without_trace_context_publishes_none() -> None:
    assert await _published_headers([(b"content-type", b"application/json")]) == {}


async def test_the_context_ends_with_the_request() -> None:
    await _published_headers([(b"traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01".encode())])
    assert inject_headers({}) == {}
