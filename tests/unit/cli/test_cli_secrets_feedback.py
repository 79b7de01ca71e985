"""``puras secrets`` (X1) and ``puras jobs feedback`` (J9) against a fake gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

from puras_cli.context import CliContext
from puras_cli.main import cli

ENV = {"PURAS_API_BASE": "http://gw.test", "PURAS_API_KEY": "puras_live_abcd1234.secretsecret"}
SECRET = "sk-live-0123456789"
ROW = {"name": "OPENAI_API_KEY", "created_at": "t0", "updated_at": "t1"}


class Gateway:
    def __init__(self, reply: dict[str, Any] | None = None, status: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self.reply = reply if reply is not None else {"ok": True}
        self.status = status

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return httpx.Response(self.status, json=self.reply)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def run(args: list[str], gw: Gateway, *, stdin: str = "", tty: bool = False) -> Result:
    obj = CliContext(environ=ENV, cwd=Path("/"), transport=httpx.MockTransport(gw), tty=tty)
    return CliRunner().invoke(cli, args, obj=obj, input=stdin)


# -- secrets ------------------------------------------------------------------------------


def test_set_reads_the_value_from_stdin_and_never_prints_it() -> None:
    gw = Gateway(ROW)
    res = run(["secrets", "set", "OPENAI_API_KEY"], gw, stdin=SECRET + "\n")
    assert res.exit_code == 0, res.output
    assert (gw.last.method, gw.last.url.path) == ("PUT", "/v1/secrets/OPENAI_API_KEY")
    assert json.loads(gw.last.content) == {"value": SECRET}  # echo's newline dropped
    assert SECRET not in str(gw.last.url)
    assert SECRET not in res.output
    assert json.loads(res.output) == ROW


def test_a_multi_line_value_keeps_its_lines() -> None:
    gw = Gateway(ROW)
    pem = "-----BEGIN KEY-----\nabc\n-----END KEY-----"
    assert run(["secrets", "set", "TLS_KEY"], gw, stdin=pem + "\n").exit_code == 0
    assert json.loads(gw.last.content) == {"value": pem}


def test_set_prompts_hidden_and_twice_on_a_terminal() -> None:
    gw = Gateway(ROW)
    res = run(["secrets", "set", "OPENAI_API_KEY"], gw, stdin=f"{SECRET}\n{SECRET}\n", tty=True)
    assert res.exit_code == 0, res.output
    assert json.loads(gw.last.content) == {"value": SECRET}
    assert "Value of OPENAI_API_KEY (hidden)" in res.output
    assert SECRET not in res.output  # the prompt does not echo what is typed


def test_the_value_is_not_a_command_line_argument() -> None:
    gw = Gateway(ROW)
    res = run(["secrets", "set", "OPENAI_API_KEY", SECRET], gw)
    assert res.exit_code == 2
    assert gw.requests == []


@pytest.mark.parametrize("name", ["lower", "1ST", "A-B", "../KEYS"])
def test_a_bad_name_is_refused_before_a_value_is_read(name: str) -> None:
    gw = Gateway(ROW)
    res = run(["secrets", "set", name], gw, stdin=SECRET)
    assert res.exit_code == 1
    assert "is not a secret name: use capital letters, digits and _" in res.output
    assert SECRET not in res.output
    assert run(["secrets", "rm", name], gw).exit_code == 1
    assert gw.requests == []


def test_an_empty_value_is_refused() -> None:
    gw = Gateway(ROW)
    res = run(["secrets", "set", "EMPTY"], gw, stdin="\n")
    assert res.exit_code == 1
    assert "no value for EMPTY" in res.output
    assert gw.requests == []


def test_list_and_rm() -> None:
    gw = Gateway({"secrets": [ROW]})
    res = run(["secrets", "list", "-o", "json"], gw)
    assert res.exit_code == 0
    assert json.loads(res.output) == {"secrets": [ROW]}
    assert (gw.last.method, gw.last.url.path) == ("GET", "/v1/secrets")
    gw.reply = {"name": "OPENAI_API_KEY", "deleted": True}
    assert run(["secrets", "rm", "OPENAI_API_KEY"], gw).exit_code == 0
    assert (gw.last.method, gw.last.url.path) == ("DELETE", "/v1/secrets/OPENAI_API_KEY")


def test_an_unknown_secret_is_the_apis_message() -> None:
    gw = Gateway({"error": {"code": "secret_not_found", "message": "no secret named 'X'"}}, 404)
    res = run(["secrets", "rm", "X"], gw)
    assert res.exit_code == 1
    assert "error: no secret named 'X'" in res.output


# -- feedback -----------------------------------------------------------------------------

JOB = "0a1b2c3d-0000-7000-8000-0000000000aa"


@pytest.mark.parametrize(("typed", "sent"), [("up", 1), ("down", -1), ("-1", -1), ("1", 1)])
def test_feedback_sends_the_rating_comment_and_user(typed: str, sent: int) -> None:
    gw = Gateway({"job_id": JOB, "rating": sent})
    res = run(
        ["jobs", "feedback", JOB, "--rating", typed, "--comment", "spot on", "--user", "u42"], gw
    )
    assert res.exit_code == 0, res.output
    assert (gw.last.method, gw.last.url.path) == ("POST", f"/v1/jobs/{JOB}/feedback")
    assert json.loads(gw.last.content) == {
        "rating": sent,
        "comment": "spot on",
        "end_user_id": "u42",
    }


def test_a_comment_alone_is_anonymous_feedback_without_a_thumb() -> None:
    gw = Gateway({})
    assert run(["jobs", "feedback", JOB, "--comment", "hm"], gw).exit_code == 0
    assert json.loads(gw.last.content) == {"rating": 0, "comment": "hm", "end_user_id": ""}


def test_feedback_list_and_stats() -> None:
    gw = Gateway({"feedback": []})
    assert run(["jobs", "feedback", JOB, "--list"], gw).exit_code == 0
    assert (gw.last.method, gw.last.url.path) == ("GET", f"/v1/jobs/{JOB}/feedback")
    gw.reply = {"up": 1, "down": 0, "count": 1, "score": 1}
    res = run(["jobs", "feedback", JOB, "--stats"], gw)
    assert json.loads(res.output) == gw.reply
    assert gw.last.url.path == f"/v1/jobs/{JOB}/feedback/stats"


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--rating", "none"],
        ["--rating", "up", "--list"],
        ["--stats", "--list"],
        ["--rating", "2"],
    ],
)
def test_feedback_without_a_thumb_or_a_comment_is_a_usage_error(args: list[str]) -> None:
    gw = Gateway({})
    res = run(["jobs", "feedback", JOB, *args], gw)
    assert res.exit_code == 2, res.output
    assert gw.requests == []


def test_the_apis_refusal_is_printed() -> None:
    gw = Gateway({"error": {"code": "job_not_found", "message": "job 'x' not found"}}, 404)
    res = run(["jobs", "feedback", "x", "--rating", "up"], gw)
    assert res.exit_code == 1
    assert "error: job 'x' not found" in res.output
