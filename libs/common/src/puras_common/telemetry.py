"""OpenTelemetry: trace context across services in NATS headers.

Context is always propagated (W3C ``traceparent``), so a caller's trace id survives the
hops even when this process exports nothing. Spans are exported only when
``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract, inject

__all__ = ["extract_context", "inject_headers", "setup_tracing", "tracer"]


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


def inject_headers(
    headers: dict[str, str], ctx: otel_context.Context | None = None
) -> dict[str, str]:
    """Add ``traceparent``/``tracestate`` of the current (or given) context to ``headers``."""
    inject(headers, context=ctx)
    return headers


def extract_context(headers: Mapping[str, Any] | None) -> otel_context.Context:
    """The trace context carried by message headers (empty when there is none)."""
    return extract(dict(headers or {}))
