"""The demo's job handling against a scripted gateway: no sleeping, the stream finishes it."""

from __future__ import annotations

import json

import httpx
import pytest

from puras_cli.client import PurasClient, PurasError
from puras_cli.devstack.demo import DemoResult, _duration, _report, _run_sync, follow_to_end


def _sse(*frames: tuple[str | None, object]) -> str:
    out = []
    for i, (event, data) in enumerate(frames, 1):
        head = f"event: {event}\n" if event else f"id: {i}\n"
        out.append(f"{head}data: {json.dumps(data)}\n\n")
    return ": ping\n\n" + "".join(out)


def _client(handler: httpx.MockTransport) -> PurasClient:
    return PurasClient("http://gw", "k", transport=handler)


def test_follow_to_end_reports_events_and_returns_the_final_job() -> None:
    body = _sse(
        (None, {"id": 1, "type": "queued", "payload": {}}),
        (None, {"id": 2, "type": "started", "payload": {"attempt": 1}}),
        (None, {"id": 3, "type": "log", "payload": {"lines": ["hi"]}}),
        ("end", {"id": "j1", "status": "succeeded", "result": {"echoed": "x"}}),
    )
    seen: list[str] = []
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text=body))
    with _client(transport) as client:
        final = follow_to_end(client, "j1", seen.append)
    assert final["status"] == "succeeded"
    assert seen == ["queued", "started (attempt 1)", 'log: ["hi"]']


def test_a_stream_that_ends_without_the_final_job_is_an_error() -> None:
    body = _sse((None, {"id": 1, "type": "queued", "payload": {}}))
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text=body))
    with _client(transport) as client, pytest.raises(PurasError, match="without its final"):
        follow_to_end(client, "j1")


def test_sync_run_follows_the_stream_when_the_wait_runs_out() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}?{request.url.query.decode()}")
        if request.method == "POST":
            return httpx.Response(200, json={"id": "j1", "status": "running"})
        return httpx.Response(200, text=_sse(("end", {"id": "j1", "status": "succeeded"})))

    lines: list[str] = []
    with _client(httpx.MockTransport(handler)) as client:
        res = _run_sync(
            client, "x", "image-info", {"image": "a"}, lambda *a, **k: lines.append(a[0])
        )
    assert res.ok
    assert calls == ["POST /v1/jobs?wait=true&timeout=60", "GET /v1/jobs/j1/stream?"]
    assert "still running after 60s" in lines[0]


def test_sync_run_of_a_terminal_job_makes_one_call() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"id": "j1", "status": "failed", "error": "boom"})

    with _client(httpx.MockTransport(handler)) as client:
        res = _run_sync(client, "x", "echo", {}, lambda *a, **k: None)
    assert not res.ok
    assert len(calls) == 1


def test_duration_and_report() -> None:
    ok = {
        "status": "succeeded",
        "result": {"echoed": "hi"},
        "started_at": "2026-01-01T00:00:00.000000Z",
        "finished_at": "2026-01-01T00:00:00.012000Z",
    }
    assert _duration(ok) == "12 ms"
    assert _duration({"started_at": None}) == "-"
    lines: list[str] = []
    _report(
        [
            DemoResult("echo (sync)", ok, 0.02),
            DemoResult("image-info (sync)", {"status": "failed", "error": "no PIL"}, 1.5),
        ],
        lambda *a, **k: lines.append(a[0]),
    )
    text = "\n".join(lines)
    assert "ok echo (sync)" in text
    assert '{"echoed": "hi"}' in text
    assert "!! image-info (sync)" in text
    assert '"no PIL"' in text
    assert "run   12 ms" in text
    assert "round trip 1500 ms" in text
