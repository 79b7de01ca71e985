"""The HTTP client: error shapes, SSE parsing, and what an unreachable API looks like."""

from __future__ import annotations

import httpx
import pytest

from puras_cli.client import (
    ApiError,
    ApiTimeout,
    ApiUnreachable,
    PurasClient,
    error_from_response,
    iter_sse,
)
from puras_cli.infra.ports import free_port


def _resp(status: int, **kwargs: object) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "http://x/v1/jobs"), **kwargs)  # type: ignore[arg-type]


def test_error_envelope_gives_code_and_message() -> None:
    err = error_from_response(
        _resp(404, json={"error": {"code": "skill_not_found", "message": "no skill 'x'"}})
    )
    assert (err.status, err.code, err.message) == (404, "skill_not_found", "no skill 'x'")


def test_fastapi_detail_string_and_validation_list() -> None:
    assert error_from_response(_resp(401, json={"detail": "bad key"})).message == "bad key"
    err = error_from_response(
        _resp(
            422,
            json={"detail": [{"loc": ["body", "skill"], "msg": "field required"}, "other"]},
        )
    )
    assert err.message == "skill: field required; other"


def test_non_json_error_body_is_shown_with_the_status() -> None:
    err = error_from_response(_resp(502, text="upstream down"))
    assert err.message == "HTTP 502 Bad Gateway: upstream down"
    assert error_from_response(_resp(500)).message == "HTTP 500 Internal Server Error"


def test_iter_sse_dispatches_frames_and_skips_pings() -> None:
    lines = [
        ": ping",
        "id: 1",
        'data: {"id": 1, "type": "queued"}',
        "",
        "id: 2",
        "data: line one",
        "data: line two",
        "",
        "",
        "event: end",
        'data: {"status": "succeeded"}',
    ]
    frames = list(iter_sse(lines))
    assert [(f.event, f.id) for f in frames] == [("message", "1"), ("message", "2"), ("end", "2")]
    assert frames[0].json() == {"id": 1, "type": "queued"}
    assert frames[1].data == "line one\nline two"
    assert frames[2].json() == {"status": "succeeded"}  # last frame without a blank line


def test_connection_refused_names_the_api_base_and_suggests_dev_up() -> None:
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with PurasClient(base, "k") as client, pytest.raises(ApiUnreachable) as info:
        client.get("/v1/jobs")
    assert info.value.reason == "connection refused"
    assert base in info.value.message
    assert "./dev up" in info.value.message


def test_api_error_is_raised_with_the_server_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(409, json={"error": {"code": "conflict", "message": "is active"}})

    client = PurasClient("http://api", "k", transport=httpx.MockTransport(handler))
    with client, pytest.raises(ApiError, match="is active") as info:
        client.delete("/v1/deployments/d1")
    assert info.value.status == 409


def test_timeout_is_reported_as_such() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client = PurasClient("http://api", "k", transport=httpx.MockTransport(handler))
    with client, pytest.raises(ApiTimeout, match="did not answer GET /v1/jobs"):
        client.get("/v1/jobs")


def test_bearer_token_and_empty_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    with PurasClient("http://api/", "tok", transport=httpx.MockTransport(handler)) as client:
        assert client.delete("/v1/keys/abcd") is None
    assert seen[0].headers["Authorization"] == "Bearer tok"
    assert str(seen[0].url) == "http://api/v1/keys/abcd"
