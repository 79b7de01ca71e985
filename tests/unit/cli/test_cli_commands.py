"""The ``puras`` commands against a scripted gateway (httpx.MockTransport).

Each test checks the request a command sends (method, path, query, body, credentials)
and what it prints; the transport answers like the gateway would.
"""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import httpx
import pytest
from click.testing import CliRunner, Result

from puras_cli.commands.admin import build_admin
from puras_cli.context import CliContext
from puras_cli.infra.ports import free_port
from puras_cli.main import cli

ENV = {
    "PURAS_API_BASE": "http://gw.test",
    "PURAS_API_KEY": "puras_live_abcd1234.secretsecretsecret",
    "PURAS_ADMIN_TOKEN": "admin-tok",
}

Handler = Callable[[httpx.Request], httpx.Response]


class Gateway:
    """Records requests; answers each with ``reply`` (default: 200 with ``{"ok": true}``)."""

    def __init__(self, reply: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._reply = reply or (lambda r: httpx.Response(200, json={"ok": True}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self._reply(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def run(
    args: list[str],
    gw: Gateway | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Result:
    obj = CliContext(
        environ=ENV if env is None else env,
        cwd=cwd or Path("/"),
        transport=httpx.MockTransport(gw or Gateway()),
    )
    return CliRunner().invoke(cli, args, obj=obj)


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


# -- configuration and errors ---------------------------------------------------------


def test_api_error_prints_message_on_stderr_and_exits_1() -> None:
    gw = Gateway(
        lambda r: httpx.Response(
            404, json={"error": {"code": "skill_not_found", "message": "no skill 'nope'"}}
        )
    )
    res = run(["jobs", "submit", "nope"], gw)
    assert res.exit_code == 1
    assert res.stderr == "error: no skill 'nope'\n"
    assert res.stdout == ""


def test_missing_api_base_says_how_to_get_one(tmp_path: Path) -> None:
    res = run(["jobs", "list"], env={}, cwd=tmp_path)
    assert res.exit_code == 1
    assert "PURAS_API_BASE is not set" in res.stderr
    assert "./dev up" in res.stderr


def test_missing_admin_token_names_the_dev_env_it_read(tmp_path: Path) -> None:
    dev_env = tmp_path / ".puras" / "dev.env"
    dev_env.parent.mkdir()
    dev_env.write_text("PURAS_API_BASE='http://gw.test'\nPURAS_API_KEY='k'\n")
    res = run(["admin", "project", "create", "x"], env={}, cwd=tmp_path)
    assert res.exit_code == 1
    assert f"PURAS_ADMIN_TOKEN is not set (nor in {dev_env})" in res.stderr


def test_dev_env_supplies_base_and_key(tmp_path: Path) -> None:
    dev_env = tmp_path / ".puras" / "dev.env"
    dev_env.parent.mkdir()
    dev_env.write_text("PURAS_API_BASE='http://from-file'\nPURAS_API_KEY='file-key'\n")
    sub = tmp_path / "project"
    sub.mkdir()
    gw = Gateway(lambda r: httpx.Response(200, json={"jobs": [], "next_cursor": None}))
    res = run(["jobs", "list"], gw, env={}, cwd=sub)
    assert res.exit_code == 0, res.stderr
    assert str(gw.last.url) == "http://from-file/v1/jobs"
    assert gw.last.headers["Authorization"] == "Bearer file-key"


def test_connection_refused_names_base_and_suggests_dev_up() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    obj = CliContext(environ={**ENV, "PURAS_API_BASE": base}, cwd=Path("/"))
    res = CliRunner().invoke(cli, ["deployments", "list"], obj=obj)  # a real socket
    assert res.exit_code == 1
    assert res.stderr.startswith(f"error: cannot reach the Puras API at {base}")
    assert "connection refused" in res.stderr
    assert "./dev up" in res.stderr


# -- push and deployments -----------------------------------------------------------------


def _project(root: Path) -> Path:
    skill = root / "skills" / "echo"
    skill.mkdir(parents=True)
    (skill / "skill.yaml").write_text("description: Echo.\nentrypoint: main.py:run\n")
    (skill / "main.py").write_text("def run(inputs):\n    return inputs\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.pyc").write_bytes(b"\0")
    return root


def _multipart(request: httpx.Request) -> dict[str, tuple[str | None, str, bytes]]:
    raw = b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n"
    msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw + request.content)
    assert isinstance(msg, email.message.EmailMessage)
    parts = {}
    for part in msg.iter_parts():
        assert isinstance(part, email.message.EmailMessage)
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts[name] = (part.get_filename(), part.get_content_type(), payload)
    return parts


def test_push_sends_the_zip_notes_and_activate(tmp_path: Path) -> None:
    gw = Gateway(lambda r: httpx.Response(201, json={"id": "d1", "skills": [{"name": "echo"}]}))
    res = run(["push", str(_project(tmp_path)), "--notes", "first", "--no-activate"], gw)
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout) == {"id": "d1", "skills": [{"name": "echo"}]}
    req = gw.last
    assert (req.method, req.url.path) == ("POST", "/v1/deployments")
    assert req.headers["Authorization"] == f"Bearer {ENV['PURAS_API_KEY']}"
    parts = _multipart(req)
    filename, ctype, data = parts["bundle"]
    assert (filename, ctype) == ("bundle.zip", "application/zip")
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "skills/echo/skill.yaml" in names
    assert not any("__pycache__" in n for n in names)  # P4 excludes
    assert parts["notes"][2] == b"first"
    assert parts["activate"][2] == b"false"


def test_push_activates_by_default(tmp_path: Path) -> None:
    gw = Gateway(lambda r: httpx.Response(201, json={"id": "d1"}))
    assert run(["push", str(_project(tmp_path))], gw).exit_code == 0
    assert _multipart(gw.last)["activate"][2] == b"true"
    assert _multipart(gw.last)["notes"][2] == b""


def test_push_refuses_a_folder_without_skills_before_any_request(tmp_path: Path) -> None:
    gw = Gateway()
    res = run(["push", str(tmp_path)], gw)
    assert res.exit_code == 1
    assert res.stderr.startswith(f"error: cannot push {tmp_path}")
    assert gw.requests == []


@pytest.mark.parametrize(
    ("args", "method", "path"),
    [
        (["deployments", "list", "-o", "json"], "GET", "/v1/deployments"),
        (["deployments", "activate", "d1"], "POST", "/v1/deployments/d1/activate"),
        (["deployments", "delete", "d1"], "DELETE", "/v1/deployments/d1"),
        (["jobs", "get", "j1", "-o", "json"], "GET", "/v1/jobs/j1"),
        (["jobs", "events", "j1", "-o", "json"], "GET", "/v1/jobs/j1/events"),
        (["jobs", "cancel", "j1", "-o", "json"], "POST", "/v1/jobs/j1/cancel"),
        (["keys", "create"], "POST", "/v1/keys"),
        (["keys", "list", "-o", "json"], "GET", "/v1/keys"),
        (["keys", "revoke", "abcd1234", "--yes"], "DELETE", "/v1/keys/abcd1234"),
    ],
)
def test_project_commands_call_their_endpoint_with_the_key(
    args: list[str], method: str, path: str
) -> None:
    gw = Gateway(lambda r: httpx.Response(200, json={"answer": path}))
    res = run(args, gw)
    assert res.exit_code == 0, res.stderr
    assert (gw.last.method, gw.last.url.path) == (method, path)
    assert gw.last.headers["Authorization"] == f"Bearer {ENV['PURAS_API_KEY']}"
    assert res.stdout == json.dumps({"answer": path}, indent=2) + "\n"


def test_ids_cannot_escape_their_path_segment() -> None:
    gw = Gateway()
    assert run(["jobs", "get", "../keys?x=1"], gw).exit_code == 0
    assert gw.last.url.raw_path == b"/v1/jobs/..%2Fkeys%3Fx%3D1"


def test_empty_answer_prints_nothing() -> None:
    gw = Gateway(lambda r: httpx.Response(204))
    res = run(["deployments", "delete", "d1"], gw)
    assert (res.exit_code, res.stdout) == (0, "")


# -- jobs ---------------------------------------------------------------------------------


def test_submit_with_input_pairs_async() -> None:
    gw = Gateway(lambda r: httpx.Response(200, json={"id": "j1", "status": "queued"}))
    res = run(
        ["jobs", "submit", "echo", "--input", "text=a=b", "--input", "n:=3", "-o", "json"], gw
    )
    assert res.exit_code == 0, res.stderr
    assert body(gw.last) == {"skill": "echo", "inputs": {"text": "a=b", "n": 3}}
    assert gw.last.url.params.get("wait") is None
    assert json.loads(res.stdout)["status"] == "queued"


def test_submit_with_inputs_json_and_wait_timeout() -> None:
    gw = Gateway(lambda r: httpx.Response(200, json={"id": "j1", "status": "succeeded"}))
    res = run(
        ["jobs", "submit", "echo", "--inputs", '{"text": "hi"}', "--wait", "--timeout", "45"], gw
    )
    assert res.exit_code == 0, res.stderr
    assert body(gw.last) == {"skill": "echo", "inputs": {"text": "hi"}}
    assert dict(gw.last.url.params) == {"wait": "true", "timeout": "45"}
    # The HTTP call must outlast the server-side wait.
    assert gw.last.extensions["timeout"]["read"] > 45


def test_submit_without_inputs_sends_an_empty_object() -> None:
    gw = Gateway()
    assert run(["jobs", "submit", "noop"], gw).exit_code == 0
    assert body(gw.last) == {"skill": "noop", "inputs": {}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--inputs", "{}", "--input", "a=b"], "not both"),
        (["--inputs", "[1]"], "must be a JSON object"),
        (["--inputs", "{nope"], "not valid JSON"),
        (["--input", "novalue"], "is not key=value"),
        (["--input", "=x"], "is not key=value"),
        (["--input", "a=1", "--input", "a=2"], "given twice"),
        (["--input", "n:={"], "wants a JSON value"),
        (["--timeout", "5"], "--timeout only applies with --wait"),
        (["--wait", "--timeout", "61"], "1<=x<=60"),
    ],
)
def test_submit_usage_errors(args: list[str], message: str) -> None:
    gw = Gateway()
    res = run(["jobs", "submit", "echo", *args], gw)
    assert res.exit_code == 2
    assert message in res.stderr
    assert gw.requests == []


def test_jobs_list_passes_filters() -> None:
    gw = Gateway(lambda r: httpx.Response(200, json={"jobs": [], "next_cursor": None}))
    assert run(["jobs", "list", "--status", "failed", "--limit", "5"], gw).exit_code == 0
    assert dict(gw.last.url.params) == {"status": "failed", "limit": "5"}
    assert run(["jobs", "list"], gw).exit_code == 0
    assert dict(gw.last.url.params) == {}
    assert run(["jobs", "list", "--status", "done"], gw).exit_code == 2


def test_events_follow_prints_json_lines_until_the_end_frame() -> None:
    stream = (
        'id: 1\ndata: {"id": 1, "type": "queued", "payload": {}}\n\n'
        ": ping\n\n"
        'id: 2\ndata: {"id": 2, "type": "succeeded", "payload": {}}\n\n'
        'event: end\ndata: {"id": "j1", "status": "succeeded"}\n\n'
    )
    gw = Gateway(
        lambda r: httpx.Response(200, text=stream, headers={"content-type": "text/event-stream"})
    )
    res = run(["jobs", "events", "j1", "--follow", "-o", "json"], gw)
    assert res.exit_code == 0, res.stderr
    assert gw.last.url.path == "/v1/jobs/j1/stream"
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert [line.get("type") for line in lines] == ["queued", "succeeded", "end"]
    assert lines[-1]["job"] == {"id": "j1", "status": "succeeded"}


def test_events_follow_reports_an_api_error() -> None:
    gw = Gateway(
        lambda r: httpx.Response(404, json={"error": {"code": "nf", "message": "no job j9"}})
    )
    res = run(["jobs", "events", "j9", "-f"], gw)
    assert (res.exit_code, res.stderr) == (1, "error: no job j9\n")


# -- admin --------------------------------------------------------------------------------


def test_admin_project_create_uses_the_admin_token() -> None:
    gw = Gateway(lambda r: httpx.Response(200, json={"id": "p1", "name": "acme"}))
    res = run(["admin", "project", "create", "acme"], gw)
    assert res.exit_code == 0, res.stderr
    assert (gw.last.method, gw.last.url.path) == ("POST", "/v1/admin/projects")
    assert body(gw.last) == {"name": "acme"}
    assert gw.last.headers["Authorization"] == "Bearer admin-tok"
    assert json.loads(res.stdout) == {"id": "p1"}


def test_admin_key_create() -> None:
    gw = Gateway(lambda r: httpx.Response(200, json={"key": "puras_live_a.b", "prefix": "a"}))
    res = run(["admin", "key", "create", "p1"], gw)
    assert res.exit_code == 0, res.stderr
    assert gw.last.url.path == "/v1/admin/projects/p1/keys"
    assert json.loads(res.stdout) == {"key": "puras_live_a.b", "prefix": "a"}


@pytest.mark.parametrize(
    ("args", "micros"),
    [(["--usd", "10"], 10_000_000), (["--usd", "0.000001"], 1), (["--micros", "42"], 42)],
)
def test_admin_credits_grant_sends_exact_micros(args: list[str], micros: int) -> None:
    gw = Gateway()
    res = run(["admin", "credits", "grant", "p1", *args], gw)
    assert res.exit_code == 0, res.stderr
    assert gw.last.url.path == "/v1/admin/projects/p1/credits"
    assert body(gw.last) == {"micros": micros}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --usd and --micros"),
        (["--usd", "1", "--micros", "1"], "exactly one of --usd and --micros"),
        (["--usd", "0.0000001"], "at most 6 decimals"),
        (["--usd", "-1"], "must be positive"),
        (["--usd", "ten"], "is not an amount"),
        (["--micros", "0"], "x>=1"),
    ],
)
def test_admin_credits_grant_refuses_bad_amounts(args: list[str], message: str) -> None:
    gw = Gateway()
    res = run(["admin", "credits", "grant", "p1", *args], gw)
    assert res.exit_code == 2
    assert message in res.stderr
    assert gw.requests == []


def test_admin_group_registers_extra_commands() -> None:
    """How `puras admin rebuild` plugs in: build_admin registers admin_rebuild.COMMANDS."""
    calls: list[str] = []

    @click.command("rebuild")
    @click.argument("projection")
    def rebuild(projection: str) -> None:
        calls.append(projection)

    group = build_admin([rebuild])
    assert set(group.commands) == {"project", "projects", "key", "keys", "credits", "rebuild"}
    res = CliRunner().invoke(group, ["rebuild", "jobs"])
    assert res.exit_code == 0
    assert calls == ["jobs"]


def test_help_lists_every_command_group() -> None:
    res = CliRunner().invoke(cli, ["--help"])
    assert res.exit_code == 0
    for name in ("push", "deployments", "jobs", "keys", "admin", "dev"):
        assert f"  {name} " in res.stdout
