"""``puras usage`` (Z2) against a scripted gateway: the query it sends with the project's
key, what it prints, and a gateway's 400 shown as the CLI's error."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner, Result

from puras_cli.context import CliContext
from puras_cli.main import cli

KEY = "puras_live_abcd1234.secretsecretsecret"
ENV = {"PURAS_API_BASE": "http://gw.test", "PURAS_API_KEY": KEY}
ANSWER = {
    "usage": [
        {"key": "summarize", "billed_micros": 12_600, "calls": 1},
    ],
    "group_by": "skill",
}


def _run(args: list[str], seen: list[httpx.Request], status: int = 200) -> Result:
    def reply(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if status != 200:
            return httpx.Response(
                status,
                json={
                    "error": {"code": "invalid_request", "message": "from must be an ISO 8601 date"}
                },
            )
        return httpx.Response(200, json=ANSWER)

    obj = CliContext(environ=ENV, cwd=Path("/"), transport=httpx.MockTransport(reply))
    return CliRunner().invoke(cli, args, obj=obj)


def test_usage_sends_the_range_and_grouping_with_the_key() -> None:
    seen: list[httpx.Request] = []
    res = _run(
        [
            "usage",
            "--from",
            "2026-11-01T00:00:00+01:00",
            "--to",
            "2026-12-01",
            "--group-by",
            "skill",
            "-o",
            "json",
        ],
        seen,
    )
    assert res.exit_code == 0, res.stderr
    [req] = seen
    assert (req.method, req.url.path) == ("GET", "/v1/usage")
    # The + of an offset is escaped, not sent as a space.
    assert b"from=2026-11-01T00%3A00%3A00%2B01%3A00" in req.url.query
    assert dict(req.url.params) == {
        "from": "2026-11-01T00:00:00+01:00",
        "to": "2026-12-01",
        "group_by": "skill",
    }
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(res.stdout) == ANSWER


def test_usage_without_options_leaves_the_defaults_to_the_gateway() -> None:
    seen: list[httpx.Request] = []
    assert _run(["usage"], seen).exit_code == 0
    assert seen[0].url.query == b""


def test_an_unknown_grouping_is_refused_before_any_request() -> None:
    seen: list[httpx.Request] = []
    res = _run(["usage", "--group-by", "week"], seen)
    assert res.exit_code == 2
    assert "'week' is not one of 'day', 'skill', 'model'" in res.stderr
    assert seen == []


def test_the_gateways_400_is_printed_as_the_error() -> None:
    seen: list[httpx.Request] = []
    res = _run(["usage", "--from", "yesterday"], seen, status=400)
    assert res.exit_code == 1
    assert res.stderr == "error: from must be an ISO 8601 date\n"
