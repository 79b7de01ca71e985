"""The one HTTP client the CLI and the MCP server share: the same calls and the same
errors from its synchronous and asynchronous halves, and nothing of the server side."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import httpx
import pytest

from puras_client import ApiError, ApiUnreachable, AsyncClient, Client, ClientError, Hints, calls

SRC = Path(__file__).resolve().parents[3] / "libs" / "client" / "src" / "puras_client"


def test_it_imports_only_httpx_and_the_stdlib() -> None:
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in {"puras_client", "httpx"} or top in sys.stdlib_module_names, (
                    f"{path.name}: {name}"
                )


def _answer(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/missing/feedback"):
        return httpx.Response(
            404, json={"error": {"code": "job_not_found", "message": "no job 'missing'"}}
        )
    return httpx.Response(200, json={"path": request.url.path, "body": request.content.decode()})


CASES = [
    calls.submit_feedback("j1", rating=-1, comment="no", end_user_id="u"),
    calls.list_feedback("j1"),
    calls.feedback_stats("j1"),
    calls.list_secrets(),
    calls.set_secret("A_B", "v"),
    calls.delete_secret("A_B"),
]


@pytest.mark.parametrize("c", CASES, ids=lambda c: f"{c.method} {c.path}")
async def test_both_halves_send_a_call_alike(c: calls.Call) -> None:
    sync = Client("http://gw", "tok", user_agent="t", transport=httpx.MockTransport(_answer))
    with sync:
        got_sync = sync.call(c)
    async with AsyncClient(
        "http://gw", "tok", user_agent="t", transport=httpx.MockTransport(_answer)
    ) as client:
        got_async = await client.call(c)
    assert got_sync == got_async
    assert got_sync["path"] == c.path


async def test_both_halves_raise_the_same_api_error() -> None:
    c = calls.list_feedback("missing")
    with (
        Client("http://gw", user_agent="t", transport=httpx.MockTransport(_answer)) as sync,
        pytest.raises(ApiError) as a,
    ):
        sync.call(c)
    async with AsyncClient(
        "http://gw", user_agent="t", transport=httpx.MockTransport(_answer)
    ) as client:
        with pytest.raises(ApiError) as b:
            await client.call(c)
    for err in (a.value, b.value):
        assert (err.status, err.code, err.message) == (404, "job_not_found", "no job 'missing'")
        assert err.describe() == (
            "GET /v1/jobs/missing/feedback failed: 404 job_not_found: no job 'missing'"
        )


def test_the_front_ends_hint_follows_an_unreachable_api() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    hints = Hints(unreachable="start one with ./dev up")
    with (
        Client(
            "http://gw", user_agent="t", hints=hints, transport=httpx.MockTransport(refuse)
        ) as c,
        pytest.raises(ApiUnreachable) as info,
    ):
        c.call(calls.list_secrets())
    assert info.value.message == (
        "cannot reach the Puras API at http://gw (connection refused); start one with ./dev up"
    )


def test_ids_and_names_stay_one_path_segment() -> None:
    assert calls.list_feedback("../keys").path == "/v1/jobs/..%2Fkeys/feedback"
    assert calls.submit_job("s", {}, wait=True, timeout=60).params == {
        "wait": "true",
        "timeout": "60",
    }
    with pytest.raises(ClientError, match="between 1 and 60"):
        calls.submit_job("s", {}, wait=True, timeout=61)
    for bad in ("lower", "", "A/B", "A B", "1A"):
        with pytest.raises(ClientError, match="is not a secret name"):
            calls.set_secret(bad, "v")
    # The value is in the body, never in the URL.
    c = calls.set_secret("TOKEN", "s3cr3t")
    assert "s3cr3t" not in c.path
    assert c.params is None
    assert c.json_body == {"value": "s3cr3t"}
