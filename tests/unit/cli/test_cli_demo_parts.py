"""The demo's job handling against a scripted gateway: no sleeping, the stream finishes it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from puras_cli.client import PurasClient, PurasError
from puras_cli.devstack.demo import DemoResult, _duration, _report, _run_sync, follow_to_end
from puras_cli.devstack.demo_models import ENABLE_HINT, GEMINI_BASE_URL, choose_models


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


# -- the agentic examples: which provider, and what the demo shows of their runs ---------


def test_without_a_provider_the_demo_has_one_line_saying_what_to_set() -> None:
    assert choose_models({}) is None
    assert choose_models({"OPENAI_API_KEY": "  ", "PATH": "/bin"}) is None
    assert "\n" not in ENABLE_HINT
    for var in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "OPENAI_BASE_URL"):
        assert var in ENABLE_HINT


def test_an_anthropic_key_runs_the_examples_on_their_own_slugs(tmp_path: Path) -> None:
    setup = choose_models(
        {"ANTHROPIC_API_KEY": "sk-ant-secret", "OPENAI_API_KEY": "sk-o", "HOME": "/root"}
    )
    assert setup is not None
    assert setup.routes is None
    assert "Anthropic (ANTHROPIC_API_KEY)" in setup.description
    assert "sk-ant-secret" not in setup.description
    env = setup.stack_env(tmp_path)
    assert env == {"ANTHROPIC_API_KEY": "sk-ant-secret", "OPENAI_API_KEY": "sk-o"}
    assert list(tmp_path.iterdir()) == []


def _routes_of(env: dict[str, str]) -> dict[str, Any]:
    data = json.loads(Path(env["PURAS_RUNNER_MODEL_ROUTES_FILE"]).read_text())
    assert isinstance(data, dict)
    return data


def test_a_local_openai_compatible_server_gets_every_slug(tmp_path: Path) -> None:
    url = "http://127.0.0.1:11434/v1"
    setup = choose_models({"OPENAI_BASE_URL": url})
    assert setup is not None
    assert "'llama3.2'" in setup.description
    env = setup.stack_env(tmp_path)
    assert env["OPENAI_BASE_URL"] == url
    assert _routes_of(env) == {
        "*": {
            "provider": "openai",
            "upstream_model": "llama3.2",
            "base_url": url,
            "api_key_env": None,
        }
    }
    setup = choose_models({"OPENAI_BASE_URL": url, "PURAS_DEMO_MODEL": "qwen2.5vl"})
    assert setup is not None
    assert _routes_of(setup.stack_env(tmp_path))["*"]["upstream_model"] == "qwen2.5vl"


def test_an_openai_or_gemini_key_alone_routes_the_claude_slugs_to_it(tmp_path: Path) -> None:
    openai_only = choose_models({"OPENAI_API_KEY": "sk-o"})
    assert openai_only is not None
    assert _routes_of(openai_only.stack_env(tmp_path))["*"]["upstream_model"] == "gpt-4o-mini"
    assert "OpenAI (OPENAI_API_KEY)" in openai_only.description
    # OpenAI's own API as the base URL is not a local server.
    hosted = choose_models(
        {"OPENAI_API_KEY": "sk-o", "OPENAI_BASE_URL": "https://api.openai.com/v1"}
    )
    assert hosted is not None
    assert "gpt-4o-mini" in hosted.description
    gemini = choose_models({"GEMINI_API_KEY": "g"})
    assert gemini is not None
    star = _routes_of(gemini.stack_env(tmp_path))["*"]
    assert star["api_key_env"] == "GEMINI_API_KEY"
    assert star["base_url"] == GEMINI_BASE_URL
    assert star["upstream_model"] == "gemini-2.5-flash"


def test_the_demo_routes_file_is_one_the_runner_accepts(tmp_path: Path) -> None:
    from puras_runner.adapters.model_routes import load_routes

    for environ in (
        {"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"},
        {"OPENAI_API_KEY": "k"},
        {"GEMINI_API_KEY": "g"},
    ):
        setup = choose_models(environ)
        assert setup is not None
        env = setup.stack_env(tmp_path)
        routes = load_routes(Path(env["PURAS_RUNNER_MODEL_ROUTES_FILE"]))
        for slug in ("claude/sonnet-4-6", "claude/sonnet-4-7"):
            route = routes.get(slug)
            assert route.provider == "openai"
            assert route.vision  # caption's image is not refused before the call (A7)


def test_agent_events_are_shown_step_by_step_and_live_text_is_left_out() -> None:
    body = _sse(
        (None, {"id": 1, "type": "queued", "payload": {}}),
        (
            None,
            {
                "id": 2,
                "type": "agent_start",
                "payload": {
                    "model": "claude/sonnet-4-6",
                    "provider": "openai",
                    "tools": ["bash", "set_output"],
                },
            },
        ),
        ("model_delta", {"type": "model_delta", "step": 1, "text": "Su"}),
        (
            None,
            {
                "id": 3,
                "type": "model_response",
                "payload": {
                    "step": 1,
                    "stop_reason": "tool_use",
                    "content": [
                        {"type": "text", "text": "Sure."},
                        {"type": "tool_use", "id": "c1", "name": "set_output", "input": {}},
                    ],
                },
            },
        ),
        (
            None,
            {
                "id": 4,
                "type": "usage",
                "payload": {
                    "step": 1,
                    "model": "claude/sonnet-4-6",
                    "input_tokens": 9,
                    "output_tokens": 3,
                },
            },
        ),
        (
            None,
            {
                "id": 5,
                "type": "tool_call",
                "payload": {"step": 1, "name": "set_output", "input": {"answer": "x"}},
            },
        ),
        (
            None,
            {
                "id": 6,
                "type": "tool_result",
                "payload": {
                    "step": 1,
                    "name": "set_output",
                    "is_error": False,
                    "content": [{"type": "text", "text": "ok"}],
                },
            },
        ),
        ("end", {"id": "j1", "status": "succeeded", "result": {"answer": "x"}}),
    )
    seen: list[str] = []
    transport = httpx.MockTransport(lambda r: httpx.Response(200, text=body))
    with _client(transport) as client:
        follow_to_end(client, "j1", seen.append)
    assert seen == [
        "queued",
        "agent_start: model claude/sonnet-4-6 (openai), 2 tools: bash, set_output",
        'model_response: step 1: tool_use, "Sure. [set_output]"',
        "usage: step 1: 9 in, 3 out (claude/sonnet-4-6)",
        'tool_call: step 1: set_output {"answer": "x"}',
        'tool_result: step 1: set_output "ok"',
    ]
