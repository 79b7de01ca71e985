"""OpenTelemetry: trace context across services in NATS headers.

Context is always propagated (W3C ``traceparent``), so a caller's trace id survives the
hops even when this process exports nothing. Spans are exported only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set.

Without an exporter the only context there is to carry is a caller's: a message or
publish without one costs no header work at all (the propagators would write nothing).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from types import TracebackType
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.propagate import extract, get_global_textmap, inject
from opentelemetry.propagators.textmap import TextMapPropagator

__all__ = [
    "exporting",
    "extract_context",
    "inject_headers",
    "message_span",
    "setup_tracing",
    "tracer",
]


def setup_tracing(service: str) -> bool:
    """Install an exporting tracer provider if an OTLP endpoint is configured."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint:
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": f"puras-{service}"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


_NON_RECORDING = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)


def exporting() -> bool:
    """Whether spans are recorded here: an SDK tracer provider is installed. Until one is,
    the global provider is a proxy (or a no-op one) and every span is non-recording."""
    # type(), not isinstance: an ABC's isinstance costs microseconds, on every message.
    return type(trace.get_tracer_provider()) not in _NON_RECORDING


def inject_headers(
    headers: dict[str, str], ctx: otel_context.Context | None = None
) -> dict[str, str]:
    """Add ``traceparent``/``tracestate`` of the current (or given) context to ``headers``."""
    if not trace.get_current_span(ctx).get_span_context().is_valid and not baggage.get_all(ctx):
        return headers  # no trace and no baggage: every propagator would write nothing
    inject(headers, context=ctx)
    return headers


@lru_cache(maxsize=8)
def _fields(textmap: TextMapPropagator) -> frozenset[str]:
    return frozenset(textmap.fields)


def _carries_context(headers: Mapping[str, Any]) -> bool:
    # The propagators look their headers up by these exact names (the default getter).
    return not _fields(get_global_textmap()).isdisjoint(headers)


def extract_context(headers: Mapping[str, Any] | None) -> otel_context.Context:
    """The trace context carried by message headers (empty when there is none)."""
    if not headers or not _carries_context(headers):
        return otel_context.Context()
    return extract(dict(headers))


def message_span(
    spans: trace.Tracer, name: str, headers: Mapping[str, Any] | None, **kwargs: Any
) -> AbstractContextManager[object]:
    """The span of handling one message, as the current span while it is handled.

    A non-recording span would only carry its parent's context on: when nothing is
    exported, the context the message brought is attached as it is, and a message
    without one costs nothing.
    """
    if exporting():
        return spans.start_as_current_span(name, context=extract_context(headers), **kwargs)
    if not headers or not _carries_context(headers):
        return nullcontext()
    return _Attached(extract(dict(headers)))


class _Attached:
    """Make ``ctx`` the current context inside a ``with`` block."""

    def __init__(self, ctx: otel_context.Context) -> None:
        self._ctx = ctx
        self._token: object = None

    def __enter__(self) -> object:
        self._token = otel_context.attach(self._ctx)
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)  # type: ignore[arg-type]
