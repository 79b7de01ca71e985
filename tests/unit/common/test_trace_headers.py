"""Trace context in NATS headers: a caller's trace id survives every hop whether or not
this process exports spans, and a message without one costs no header work."""

from __future__ import annotations

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from puras_common import telemetry
from puras_common.telemetry import exporting, extract_context, inject_headers, message_span

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = {"Nats-Msg-Id": "m1", "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"}
PLAIN = {"Nats-Msg-Id": "m1", "Nats-Expected-Last-Subject-Sequence": "4"}


def test_no_exporter_is_installed_in_unit_tests() -> None:
    assert not exporting()


def test_a_publish_without_a_trace_gets_no_trace_headers() -> None:
    assert inject_headers({"Nats-Msg-Id": "m1"}) == {"Nats-Msg-Id": "m1"}


def test_a_message_without_trace_headers_carries_an_empty_context() -> None:
    ctx = extract_context(PLAIN)
    assert not trace.get_current_span(ctx).get_span_context().is_valid
    assert extract_context(None) == otel_context.Context()


def test_a_callers_trace_id_survives_a_hop_without_an_exporter() -> None:
    spans = trace.get_tracer("test")
    with message_span(spans, "hop", CALLER):
        out = inject_headers({})
    assert TRACE_ID in out["traceparent"]
    # and nothing is left attached once the message is handled
    assert inject_headers({}) == {}


def test_handling_a_message_without_a_trace_attaches_nothing() -> None:
    spans = trace.get_tracer("test")
    before = otel_context.get_current()
    with message_span(spans, "hop", PLAIN):
        assert otel_context.get_current() is before
        assert inject_headers({}) == {}


def test_baggage_alone_is_carried_on() -> None:
    spans = trace.get_tracer("test")
    with message_span(spans, "hop", {"baggage": "tenant=a"}):
        out = inject_headers({})
    assert out.get("baggage") == "tenant=a"


def test_with_an_exporter_each_hop_is_a_recorded_span_of_the_callers_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(telemetry, "exporting", lambda: True)
    spans = provider.get_tracer("test")
    with message_span(spans, "traced hop", CALLER):
        traced = inject_headers({})
    with message_span(spans, "root hop", PLAIN):
        root = inject_headers({})
    assert TRACE_ID in traced["traceparent"]
    assert "00f067aa0ba902b7" not in traced["traceparent"]  # the hop's own span id
    assert "traceparent" in root  # a recorded span is propagated even without a caller
    assert [s.name for s in exported.get_finished_spans()] == ["traced hop", "root hop"]
