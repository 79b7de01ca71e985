"""The conventional side of ``puras``: tables by default and ``-o json`` for scripts, exit
status 1 for a job that failed or was cancelled, live following, inputs from a file or
stdin, and a question before the key in use is revoked."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from puras_cli.context import CliContext
from puras_cli.main import cli

ENV = {"PURAS_API_BASE": "http://gw.test", "PURAS_API_KEY": "puras_live_abcd1234.secret"}

JOB = {
    "id": "j1", "project_id": "p1", "skill": "echo", "status": "succeeded",
    "inputs": {"text": "hi"}, "result": {"echoed": "hi"}, "error": None, "cost_micros": 12,
    "deployment_id": "d1", "attempts": 1, "created_at": "2026-01-01T00:00:00Z",
    "started_at": None, "finished_at": None,
}  # fmt: skip


class Gateway:
    def __init__(self, reply: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self.reply = reply

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.reply(request)


def answer(value: Any, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda r: httpx.Response(status, json=value)


def run(args: list[str], gw: Gateway, *, stdin: str | None = None, tty: bool = False) -> Result:
    obj = CliContext(environ=ENV, cwd=Path("/"), transport=httpx.MockTransport(gw), tty=tty)
    return CliRunner().invoke(cli, args, obj=obj, input=stdin)


def sse(*frames: dict[str, Any], end: dict[str, Any]) -> str:
    out = "".join(f"event: {f['type']}\nid: {f['id']}\ndata: {json.dumps(f)}\n\n" for f in frames)
    return out + f"event: end\ndata: {json.dumps(end)}\n\n"


def stream_reply(text: str) -> Callable[[httpx.Request], httpx.Response]:
    headers = {"content-type": "text/event-stream", "Puras-Job-Id": "j1"}
    return lambda r: httpx.Response(200, text=text, headers=headers)


# -- tables and -o json -------------------------------------------------------------------


def test_jobs_list_prints_a_table_and_the_next_page_command() -> None:
    gw = Gateway(answer({"jobs": [JOB, {**JOB, "id": "j2", "status": "failed"}],
                         "next_cursor": "abc"}))  # fmt: skip
    res = run(["jobs", "list", "--limit", "2"], gw)
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["ID", "SKILL", "STATUS", "COST", "(µ$)", "CREATED"]
    assert lines[1].split()[:4] == ["j1", "echo", "succeeded", "12"]
    assert lines[2].split()[:3] == ["j2", "echo", "failed"]
    assert "puras jobs list --cursor abc" in res.stderr


def test_jobs_list_sends_the_cursor_and_prints_json_on_request() -> None:
    page = {"jobs": [JOB], "next_cursor": None}
    gw = Gateway(answer(page))
    res = run(["jobs", "list", "--cursor", "abc", "-o", "json"], gw)
    assert res.exit_code == 0, res.stderr
    assert gw.requests[0].url.params["cursor"] == "abc"
    assert json.loads(res.stdout) == page


def test_an_empty_list_says_so() -> None:
    res = run(["jobs", "list"], Gateway(answer({"jobs": [], "next_cursor": None})))
    assert res.stdout == "no jobs\n"


def test_jobs_get_prints_field_value_lines() -> None:
    res = run(["jobs", "get", "j1"], Gateway(answer({**JOB, "held_reason": "no credit"})))
    assert res.exit_code == 0, res.stderr
    rows = dict(line.split(None, 1) for line in res.stdout.splitlines())
    assert rows["status"] == "succeeded"
    assert rows["held_reason"] == "no credit"
    assert rows["result"] == '{"echoed":"hi"}'
    assert rows["error"] == "-"


def test_skills_list_shows_inputs_with_required_marks() -> None:
    skill = {
        "name": "echo", "kind": "deterministic", "entrypoint": "main.py:run",
        "description": "Echoes", "output_schema": None,
        "input_schema": {"type": "object", "properties": {"text": {}, "n": {}},
                         "required": ["text"]},
    }  # fmt: skip
    gw = Gateway(answer({"deployment_id": "d1", "skills": [skill]}))
    res = run(["skills", "list"], gw)
    assert res.exit_code == 0, res.stderr
    assert gw.requests[0].url.path == "/v1/skills"
    row = res.stdout.splitlines()[1]
    assert re.match(r"echo\s+deterministic\s+text\*, n\s+-\s+Echoes$", row), row
    assert json.loads(run(["skills", "list", "-o", "json"], gw).stdout)["skills"] == [skill]


def test_skills_list_without_an_active_deployment_says_how_to_get_one() -> None:
    res = run(["skills", "list"], Gateway(answer({"deployment_id": None, "skills": []})))
    assert "puras push" in res.stdout


def test_balance_in_micros_and_dollars() -> None:
    gw = Gateway(answer({"credit_balance_micros": 2_500_000}))
    res = run(["balance"], gw)
    assert res.exit_code == 0, res.stderr
    assert gw.requests[0].url.path == "/v1/billing/balance"
    assert "usd                    2.500000" in res.stdout
    assert json.loads(run(["balance", "-o", "json"], gw).stdout) == {
        "credit_balance_micros": 2_500_000
    }


def test_usage_table() -> None:
    row = {"key": "2026-01-01", "billed_micros": 5, "calls": 1, "input_tokens": 3,
           "output_tokens": 4}  # fmt: skip
    res = run(["usage"], Gateway(answer({"usage": [row]})))
    assert res.stdout.splitlines()[1].split() == ["2026-01-01", "5", "1", "3", "4"]


def test_deployments_table_shows_build_status_and_error() -> None:
    dep = {"id": "d1", "active": False, "status": "failed", "error": "pip failed",
           "created_at": "t", "notes": "first", "skills": [{"name": "echo"}]}  # fmt: skip
    res = run(["deployments", "list"], Gateway(answer({"deployments": [dep]})))
    assert res.stdout.splitlines()[1].split() == [
        "d1",
        "no",
        "failed",
        "t",
        "echo",
        "first",
        "pip",
        "failed",
    ]


# -- submit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [("succeeded", 0), ("failed", 1), ("cancelled", 1)])
def test_submit_wait_exits_1_for_a_job_that_did_not_succeed(status: str, code: int) -> None:
    res = run(
        ["jobs", "submit", "echo", "--wait", "-o", "json"],
        Gateway(answer({**JOB, "status": status})),
    )
    assert res.exit_code == code
    assert json.loads(res.stdout)["status"] == status


def test_submit_without_wait_exits_0_even_for_a_failed_answer() -> None:
    res = run(["jobs", "submit", "echo"], Gateway(answer({**JOB, "status": "failed"})))
    assert res.exit_code == 0


def test_submit_sends_idempotency_key_and_cost_cap() -> None:
    gw = Gateway(answer(JOB))
    res = run(["jobs", "submit", "echo", "--idempotency-key", "k-1", "--max-cost", "900"], gw)
    assert res.exit_code == 0, res.stderr
    req = gw.requests[0]
    assert req.headers["Idempotency-Key"] == "k-1"
    assert json.loads(req.content) == {"skill": "echo", "inputs": {}, "max_cost_micros": 900}


def test_submit_reads_inputs_from_a_file_and_from_stdin(tmp_path: Path) -> None:
    gw = Gateway(answer(JOB))
    f = tmp_path / "in.json"
    f.write_text('{"text": "from file"}')
    assert run(["jobs", "submit", "echo", "--inputs", f"@{f}"], gw).exit_code == 0
    assert json.loads(gw.requests[-1].content)["inputs"] == {"text": "from file"}
    assert (
        run(["jobs", "submit", "echo", "--inputs", "-"], gw, stdin='{"text": "piped"}').exit_code
        == 0
    )
    assert json.loads(gw.requests[-1].content)["inputs"] == {"text": "piped"}
    res = run(["jobs", "submit", "echo", "--inputs", f"@{tmp_path / 'missing.json'}"], gw)
    assert res.exit_code == 2
    assert "cannot read" in res.stderr


def test_submit_follow_streams_until_the_end_and_exits_1_when_failed() -> None:
    text = sse(
        {"id": 1, "type": "queued", "payload": {}, "job_id": "j1"},
        {"id": 2, "type": "log", "payload": {"lines": ["about to fail"]}, "job_id": "j1"},
        {"id": 3, "type": "failed", "payload": {}, "job_id": "j1"},
        end={**JOB, "status": "failed", "error": "ValueError: boom"},
    )
    gw = Gateway(stream_reply(text))
    res = run(["jobs", "submit", "boom", "--follow"], gw)
    assert res.exit_code == 1
    req = gw.requests[0]
    assert (req.method, req.url.params["stream"]) == ("POST", "true")
    assert res.stdout.splitlines() == [
        "[1] queued", "[2] about to fail", "[3] failed", "job j1 failed: ValueError: boom",
    ]  # fmt: skip


def test_submit_follow_json_lines() -> None:
    text = sse({"id": 1, "type": "succeeded", "payload": {}, "job_id": "j1"}, end=JOB)
    res = run(["jobs", "submit", "echo", "-f", "-o", "json"], Gateway(stream_reply(text)))
    assert res.exit_code == 0, res.stderr
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [line["type"] for line in lines] == ["succeeded", "end"]
    assert lines[-1]["job"]["id"] == "j1"


def test_wait_and_follow_together_are_refused() -> None:
    gw = Gateway(answer(JOB))
    assert run(["jobs", "submit", "echo", "--wait", "--follow"], gw).exit_code == 2
    assert gw.requests == []


# -- logs and tail ------------------------------------------------------------------------------


def test_logs_prints_only_the_output_lines() -> None:
    events = {"events": [
        {"id": 1, "type": "queued", "payload": {}, "at": "t"},
        {"id": 2, "type": "log", "payload": {"lines": ["a", "b"]}, "at": "t"},
        {"id": 3, "type": "log", "payload": {"lines": ["c"]}, "at": "t"},
    ]}  # fmt: skip
    gw = Gateway(answer(events))
    res = run(["jobs", "logs", "j1"], gw)
    assert (res.exit_code, res.stdout) == (0, "a\nb\nc\n")
    assert gw.requests[0].url.path == "/v1/jobs/j1/events"


def test_tail_follows_the_stream_and_exits_1_when_cancelled() -> None:
    text = sse({"id": 1, "type": "cancelled", "payload": {}, "job_id": "j1"},
               end={**JOB, "status": "cancelled"})  # fmt: skip
    gw = Gateway(stream_reply(text))
    res = run(["jobs", "tail", "j1"], gw)
    assert res.exit_code == 1
    assert gw.requests[0].url.path == "/v1/jobs/j1/stream"
    assert res.stdout.splitlines()[0] == "[1] cancelled"


# -- revoking the key in use ----------------------------------------------------------------------


def test_revoking_the_key_in_use_needs_yes_when_nobody_can_answer() -> None:
    gw = Gateway(answer({"revoked": True}))
    res = run(["keys", "revoke", "abcd1234"], gw)
    assert res.exit_code == 2
    assert "--yes" in res.stderr
    assert gw.requests == []


def test_revoking_the_key_in_use_asks_first() -> None:
    gw = Gateway(answer({"revoked": True}))
    res = run(["keys", "revoke", "abcd1234"], gw, stdin="n\n", tty=True)
    assert res.exit_code == 1
    assert gw.requests == []
    res = run(["keys", "revoke", "abcd1234"], gw, stdin="y\n", tty=True)
    assert res.exit_code == 0, res.stderr
    assert gw.requests[0].url.path == "/v1/keys/abcd1234"


def test_revoking_another_key_does_not_ask() -> None:
    gw = Gateway(answer({"revoked": True}))
    assert run(["keys", "revoke", "other999"], gw).exit_code == 0
    assert gw.requests[0].method == "DELETE"


# -- help -----------------------------------------------------------------------------------------


def _helps(cmd: click.Command, path: list[str]) -> list[tuple[str, str]]:
    out = [(" ".join(path), cmd.get_help(click.Context(cmd, info_name=" ".join(path))))]
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            out += _helps(sub, [*path, name])
    return out


def test_help_texts_name_no_requirement_ids() -> None:
    helps = _helps(cli, ["puras"])
    assert len(helps) > 30
    leaks = [(p, m) for p, text in helps for m in re.findall(r"\b[A-Z]\d{1,2}\b", text)]
    assert leaks == []
    assert any("-o, --output [table|json]" in text for p, text in helps if p == "puras jobs list")
