"""The MCP tools' argument handling and HTTP calls, against an httpx.MockTransport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult

from purasbackend_mcp.config import Config, load_config, save_config
from purasbackend_mcp.server import create_server

KEY = "puras_live_AbCdEfGh.SecretSecretSecretSecretSecre32"
BASE = "http://gw.test:8080"
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "quickstart"

Handler = Callable[[httpx.Request], httpx.Response]


def job(status: str = "queued", **extra: Any) -> dict[str, Any]:
    return {"id": "j1", "skill": "echo", "status": status, "inputs": {}, "result": None, **extra}


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


class Gateway:
    """Records every request; answers with ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def configured(config_file: Path) -> Path:
    save_config(Config(BASE, KEY, ""))
    return config_file


def server_for(handler: Handler) -> tuple[MCPServer, Gateway]:
    gw = Gateway(handler)
    return create_server(transport=httpx.MockTransport(gw)), gw


async def call(server: MCPServer, name: str, args: dict[str, Any] | None = None) -> Any:
    """The tool's structured answer (unwrapped for lists and strings)."""
    result = await server.call_tool(name, args or {})
    assert isinstance(result, CallToolResult)
    out = result.structured_content
    assert out is not None
    tool = next(t for t in await server.list_tools() if t.name == name)
    schema = tool.output_schema or {}
    if set(schema.get("properties", {})) == {"result"} and set(out) == {"result"}:
        return out["result"]
    return out


# -- registration --------------------------------------------------------------------


async def test_exactly_the_built_tools_are_registered() -> None:
    names = {t.name for t in await create_server().list_tools()}
    assert names == {
        "configure",
        "show_config",
        "push",
        "list_deployments",
        "list_skills",
        "activate_deployment",
        "delete_deployment",
        "submit_job",
        "submit_agentic_job",
        "submit_function_job",
        "get_job",
        "list_jobs",
        "tail_job",
        "cancel_job",
        "submit_job_feedback",
        "list_job_feedback",
        "job_feedback_stats",
        "list_secrets",
        "set_secret",
        "delete_secret",
        "drive_sign",
        "list_docs",
        "read_doc",
        "search_docs",
    }


async def test_defaults_are_the_documented_ones() -> None:
    tools = {t.name: t.input_schema["properties"] for t in await create_server().list_tools()}
    assert tools["submit_job"]["inputs"]["default"] == {}
    assert tools["submit_job"]["wait"]["default"] is False
    assert tools["submit_job"]["timeout"]["default"] == 30
    assert tools["list_jobs"]["status"]["default"] == ""
    assert tools["list_jobs"]["limit"]["default"] == 25
    assert tools["tail_job"]["max_seconds"]["default"] == 60
    assert tools["push"]["notes"]["default"] == ""
    assert tools["push"]["activate"]["default"] is True
    assert tools["configure"]["project_id"]["default"] == ""
    assert tools["search_docs"]["limit"]["default"] == 5
    assert tools["drive_sign"]["ttl"]["default"] == 3600
    assert "default" not in tools["drive_sign"]["path"]
    assert tools["submit_agentic_job"] == tools["submit_job"] == tools["submit_function_job"]
    feedback = tools["submit_job_feedback"]
    assert (feedback["rating"]["default"], feedback["comment"]["default"]) == (0, "")
    assert feedback["end_user_id"]["default"] == ""
    assert "default" not in feedback["job_id"]
    assert set(tools["set_secret"]) == {"name", "value"}
    assert "default" not in tools["set_secret"]["value"]
    assert set(tools["list_secrets"]) == set()


# -- configure -----------------------------------------------------------------------


async def test_configure_saves_and_checks_the_key(config_file: Path) -> None:
    server, gw = server_for(
        lambda r: httpx.Response(200, json={"deployments": [{"id": "d1", "active": True}]})
    )
    text = await call(
        server, "configure", {"api_base": BASE + "/", "api_key": KEY, "project_id": "p"}
    )
    assert load_config() == Config(BASE, KEY, "p")
    assert "puras_live_AbCdEfGh" in text
    assert "SecretSecret" not in text
    assert "accepted the key" in text
    assert "active deployment d1" in text
    assert gw.last.url == httpx.URL(BASE + "/v1/deployments")
    assert gw.last.headers["authorization"] == f"Bearer {KEY}"


async def test_configure_still_saves_when_the_check_fails(config_file: Path) -> None:
    server, _ = server_for(lambda r: error(401, "unauthorized", "invalid API key"))
    text = await call(server, "configure", {"api_base": BASE, "api_key": KEY})
    assert load_config() is not None
    assert "Checking it failed" in text
    assert "401 unauthorized" in text


async def test_configure_refuses_a_key_without_its_dot(config_file: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(500))
    with pytest.raises(ToolError, match="no dot"):
        await call(server, "configure", {"api_base": BASE, "api_key": "puras_live_AbCdSecret"})
    assert not config_file.exists()
    assert gw.requests == []


async def test_tools_need_a_config_first(config_file: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json={}))
    with pytest.raises(ToolError, match=r"not configured.*call configure\(api_base, api_key\)"):
        await call(server, "list_jobs")
    assert gw.requests == []


# -- deployments ---------------------------------------------------------------------


async def test_push_uploads_the_packed_bundle(configured: Path) -> None:
    server, gw = server_for(
        lambda r: httpx.Response(200, json={"id": "d1", "active": False, "skills": []})
    )
    out = await call(
        server, "push", {"project_dir": str(EXAMPLE), "notes": "first", "activate": False}
    )
    assert out["id"] == "d1"
    assert out["bundle"]["path"] == str(EXAMPLE)
    assert out["bundle"]["files"] >= 4
    req = gw.last
    assert (req.method, req.url.path) == ("POST", "/v1/deployments")
    assert req.headers["content-type"].startswith("multipart/form-data")
    body = req.content
    assert b'name="bundle"; filename="bundle.zip"' in body
    assert b'name="notes"\r\n\r\nfirst' in body
    assert b'name="activate"\r\n\r\nfalse' in body


async def test_push_refuses_a_folder_without_skills_before_sending(
    configured: Path, tmp_path: Path
) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json={}))
    (tmp_path / "proj").mkdir()
    with pytest.raises(ToolError, match=r"no skills found: expected skills/<name>/skill\.yaml"):
        await call(server, "push", {"project_dir": str(tmp_path / "proj")})
    assert gw.requests == []


async def test_push_shows_every_bundle_problem(configured: Path) -> None:
    message = (
        "bundle rejected: skills/echo/skill.yaml: entrypoint: file main.py not found in "
        "skills/echo/"
    )
    server, _ = server_for(lambda r: error(400, "invalid_bundle", message))
    with pytest.raises(ToolError) as info:
        await call(server, "push", {"project_dir": str(EXAMPLE)})
    assert "400 invalid_bundle" in str(info.value)
    assert "skills/echo/skill.yaml: entrypoint: file main.py not found" in str(info.value)


async def test_deployment_tools_call_their_paths(configured: Path) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.method == "GET":
            return httpx.Response(200, json={"deployments": [{"id": "d2"}, {"id": "d1"}]})
        if r.method == "DELETE":
            return httpx.Response(200, json={"id": "d1", "deleted": True})
        return httpx.Response(200, json={"id": "d1", "active": True})

    server, gw = server_for(handler)
    assert await call(server, "list_deployments") == {"deployments": [{"id": "d2"}, {"id": "d1"}]}
    assert (await call(server, "activate_deployment", {"deployment_id": "d1"}))["active"]
    assert gw.last.url.path == "/v1/deployments/d1/activate"
    assert await call(server, "delete_deployment", {"deployment_id": "d1"}) == (
        "deleted deployment d1"
    )
    assert (gw.last.method, gw.last.url.path) == ("DELETE", "/v1/deployments/d1")


async def test_an_id_cannot_add_a_path_segment(configured: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=job()))
    await call(server, "get_job", {"job_id": "../deployments?x=1"})
    assert gw.last.url.raw_path == b"/v1/jobs/..%2Fdeployments%3Fx%3D1"


async def test_deleting_the_active_deployment_passes_the_gateways_advice(
    configured: Path,
) -> None:
    message = "deployment d1 is the active deployment and cannot be deleted; activate another"
    server, _ = server_for(lambda r: error(409, "deployment_active", message))
    with pytest.raises(ToolError) as info:
        await call(server, "delete_deployment", {"deployment_id": "d1"})
    assert str(info.value).endswith(f"409 deployment_active: {message}")


@pytest.mark.parametrize(
    ("code", "message", "hint"),
    [
        ("unauthorized", "invalid API key", "configure(api_base, api_key)"),
        ("job_not_found", "job 'x' not found in this project", "list_jobs()"),
        ("deployment_not_found", "deployment 'x' not found", "list_deployments()"),
        ("payload_too_large", "body over 4 MiB", "under 4 MiB"),
        ("skill_not_found", "unknown skill 'e': the project has no active deployment yet", "push("),
    ],
)
async def test_errors_carry_a_hint_in_this_servers_terms(
    configured: Path, code: str, message: str, hint: str
) -> None:
    server, _ = server_for(lambda r: error(400, code, message))
    with pytest.raises(ToolError) as info:
        await call(server, "get_job", {"job_id": "x"})
    assert message in str(info.value)
    assert hint in str(info.value)


# -- jobs ----------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["submit_job", "submit_agentic_job", "submit_function_job"])
async def test_submit_sends_skill_and_inputs(configured: Path, tool: str) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=job()))
    out = await call(server, tool, {"skill": "echo", "inputs": {"text": "hi"}})
    assert out == job()
    assert (gw.last.method, gw.last.url.path) == ("POST", "/v1/jobs")
    assert json.loads(gw.last.content) == {"skill": "echo", "inputs": {"text": "hi"}}
    assert "wait" not in gw.last.url.params


async def test_submit_inputs_default_to_an_empty_object(configured: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=job()))
    await call(server, "submit_job", {"skill": "echo"})
    await call(server, "submit_job", {"skill": "echo"})
    assert [json.loads(r.content)["inputs"] for r in gw.requests] == [{}, {}]


async def test_submit_accepts_inputs_sent_as_a_json_string(configured: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=job()))
    await call(server, "submit_job", {"skill": "echo", "inputs": '{"text": "hi"}'})
    assert json.loads(gw.last.content)["inputs"] == {"text": "hi"}


async def test_submit_refuses_inputs_that_are_not_an_object(configured: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=job()))
    with pytest.raises(ToolError, match="inputs"):
        await call(server, "submit_job", {"skill": "echo", "inputs": [1, 2]})
    with pytest.raises(ToolError, match="skill is empty"):
        await call(server, "submit_job", {"skill": " "})
    assert gw.requests == []


async def test_wait_passes_the_timeout(configured: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=job("succeeded")))
    out = await call(server, "submit_job", {"skill": "echo", "wait": True, "timeout": 10})
    assert dict(gw.last.url.params) == {"wait": "true", "timeout": "10"}
    assert "note" not in out


@pytest.mark.parametrize(("given", "sent"), [(120, "60"), (0, "1"), (-5, "1")])
async def test_wait_timeout_is_clamped_and_the_answer_says_so(
    configured: Path, given: int, sent: str
) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=job("succeeded")))
    out = await call(server, "submit_job", {"skill": "echo", "wait": True, "timeout": given})
    assert gw.last.url.params["timeout"] == sent
    assert f"timeout={given} is outside 1-60 s; waited at most {sent} s" in out["note"]


async def test_a_wait_that_ends_early_points_to_tail_job(configured: Path) -> None:
    server, _ = server_for(lambda r: httpx.Response(200, json=job("running")))
    out = await call(server, "submit_job", {"skill": "echo", "wait": True, "timeout": 1})
    assert "still running" in out["note"]
    assert "tail_job(job_id='j1')" in out["note"]


async def test_unknown_skill_and_bad_inputs_come_back_as_tool_errors(configured: Path) -> None:
    server, _ = server_for(
        lambda r: error(
            404, "skill_not_found", "unknown skill 'x'; skills of the active deployment: echo"
        )
    )
    with pytest.raises(ToolError, match=r"404 skill_not_found: unknown skill 'x'.*echo"):
        await call(server, "submit_job", {"skill": "x"})
    server, _ = server_for(
        lambda r: error(422, "invalid_inputs", "inputs: 'text' is a required property")
    )
    with pytest.raises(ToolError, match=r"'text' is a required property.*input_schema"):
        await call(server, "submit_job", {"skill": "echo"})


async def test_fastapi_detail_errors_are_readable_too(configured: Path) -> None:
    server, _ = server_for(
        lambda r: httpx.Response(
            400, json={"detail": [{"loc": ["body", "skill"], "msg": "required"}]}
        )
    )
    with pytest.raises(ToolError, match="400 error: skill: required"):
        await call(server, "submit_job", {"skill": "echo"})


async def test_list_jobs_passes_filters_and_validates_them(configured: Path) -> None:
    server, gw = server_for(
        lambda r: httpx.Response(200, json={"jobs": [job()], "next_cursor": None})
    )
    assert await call(server, "list_jobs") == {"jobs": [job()], "next_cursor": None}
    assert dict(gw.last.url.params) == {"limit": "25"}
    await call(server, "list_jobs", {"status": "Failed", "limit": 5})
    assert dict(gw.last.url.params) == {"status": "failed", "limit": "5"}
    sent = len(gw.requests)
    with pytest.raises(ToolError, match="status must be one of queued, running"):
        await call(server, "list_jobs", {"status": "done"})
    with pytest.raises(ToolError, match="limit must be between 1 and 200"):
        await call(server, "list_jobs", {"limit": 0})
    with pytest.raises(ToolError, match="limit"):
        await call(server, "list_jobs", {"limit": "many"})
    assert len(gw.requests) == sent


async def test_cancel_a_finished_job_names_its_status(configured: Path) -> None:
    server, gw = server_for(
        lambda r: error(409, "job_finished", "job j1 already succeeded; it cannot be cancelled")
    )
    with pytest.raises(ToolError, match="409 job_finished: job j1 already succeeded"):
        await call(server, "cancel_job", {"job_id": "j1"})
    assert (gw.last.method, gw.last.url.path) == ("POST", "/v1/jobs/j1/cancel")


async def test_a_refused_connection_names_the_api_base(configured: Path) -> None:
    def refuse(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    server, _ = server_for(refuse)
    with pytest.raises(
        ToolError, match=rf"cannot reach the Puras API at {BASE} \(connection refused\)"
    ):
        await call(server, "get_job", {"job_id": "j1"})


async def test_a_real_refused_port_names_the_api_base(config_file: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    save_config(Config(base, KEY))
    with pytest.raises(ToolError, match=f"cannot reach the Puras API at {base}"):
        await call(create_server(), "list_deployments")


async def test_a_non_json_answer_says_api_base_may_be_wrong(configured: Path) -> None:
    server, _ = server_for(lambda r: httpx.Response(200, text="<html>hello</html>"))
    with pytest.raises(ToolError, match=r"not JSON.*is api_base the Puras gateway"):
        await call(server, "list_jobs")


# -- tail_job ------------------------------------------------------------------------


def sse(*frames: tuple[str | None, dict[str, Any]]) -> bytes:
    out = [": ping\n\n"]
    for n, (event, data) in enumerate(frames, 1):
        head = f"event: {event}\n" if event else ""
        out.append(f"{head}id: {n}\ndata: {json.dumps(data)}\n\n")
    return "".join(out).encode()


EVENTS = [
    {"id": 1, "type": "queued", "payload": {}, "at": "t1"},
    {"id": 2, "type": "started", "payload": {"attempt": 1}, "at": "t2"},
    {"id": 3, "type": "succeeded", "payload": job("succeeded"), "at": "t3"},
]


async def test_tail_job_follows_the_stream_to_its_end_frame(configured: Path) -> None:
    body = sse(*[(None, e) for e in EVENTS], ("end", job("succeeded")))
    server, gw = server_for(
        lambda r: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    )
    out = await call(server, "tail_job", {"job_id": "j1"})
    assert out == {"job": job("succeeded"), "events": EVENTS}
    assert [r.url.path for r in gw.requests] == ["/v1/jobs/j1/stream"]
    assert gw.last.headers["accept"] == "text/event-stream"


class _Hanging(httpx.AsyncByteStream):
    """Two frames, then silence (the job is still running)."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.first
        await anyio.sleep(3600)


async def test_tail_job_stops_at_the_deadline(configured: Path) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path.endswith("/stream"):
            return httpx.Response(200, stream=_Hanging(sse((None, EVENTS[0]), (None, EVENTS[1]))))
        return httpx.Response(200, json=job("running"))

    server, gw = server_for(handler)
    with anyio.fail_after(10):
        out = await call(server, "tail_job", {"job_id": "j1", "max_seconds": 0.3})
    assert out["timed_out"] is True
    assert out["events"] == EVENTS[:2]
    assert out["job"]["status"] == "running"
    assert "still running" in out["note"]
    assert [r.url.path for r in gw.requests] == ["/v1/jobs/j1/stream", "/v1/jobs/j1"]


async def test_tail_job_validates_max_seconds(configured: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=job()))
    with pytest.raises(ToolError, match="max_seconds must be positive"):
        await call(server, "tail_job", {"job_id": "j1", "max_seconds": 0})
    assert gw.requests == []


async def test_tail_job_of_an_unknown_job(configured: Path) -> None:
    server, _ = server_for(lambda r: error(404, "job_not_found", "no job nope in this project"))
    with pytest.raises(ToolError, match=r"404 job_not_found.*list_jobs"):
        await call(server, "tail_job", {"job_id": "nope"})


async def test_tail_job_when_the_stream_closes_early(configured: Path) -> None:
    def handler(r: httpx.Request) -> httpx.Response:
        if r.url.path.endswith("/stream"):
            return httpx.Response(200, content=sse((None, EVENTS[0])))
        return httpx.Response(200, json=job("queued"))

    server, _ = server_for(handler)
    out = await call(server, "tail_job", {"job_id": "j1"})
    assert out["events"] == EVENTS[:1]
    assert "timed_out" not in out
    assert "closed before the job ended" in out["note"]


# -- drive_sign ----------------------------------------------------------------------

SIGNED = {
    "url": f"{BASE}/v1/drive/file/p1/uploads/a%20b.png?expires=1790000000&sig=ab12",
    "expires_at": "2026-09-21T10:13:20Z",
}


async def test_drive_sign_asks_for_the_path_and_ttl(configured: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=SIGNED))
    assert await call(server, "drive_sign", {"path": "uploads/a b.png"}) == SIGNED
    assert (gw.last.method, gw.last.url.path) == ("GET", "/v1/drive/sign")
    assert dict(gw.last.url.params) == {"path": "uploads/a b.png", "ttl": "3600"}
    assert gw.last.headers["authorization"] == f"Bearer {KEY}"
    await call(server, "drive_sign", {"path": "a&ttl=1?x", "ttl": 60})
    # A path is one query value: it cannot add a parameter or change the route.
    assert dict(gw.last.url.params) == {"path": "a&ttl=1?x", "ttl": "60"}
    assert gw.last.url.path == "/v1/drive/sign"


async def test_drive_sign_is_read_only() -> None:
    tool = next(t for t in await create_server().list_tools() if t.name == "drive_sign")
    assert tool.annotations is not None
    assert tool.annotations.read_only_hint is True
    assert "POST /v1/drive/upload" in (tool.description or "")


async def test_drive_sign_refuses_an_empty_path_before_calling(configured: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=SIGNED))
    with pytest.raises(ToolError, match="path is empty: name a file of the project's drive"):
        await call(server, "drive_sign", {"path": "  "})
    assert gw.requests == []


async def test_drive_sign_of_a_missing_file_points_to_the_list(configured: Path) -> None:
    message = "there is no file 'uploads/x.png' in the drive"
    server, _ = server_for(lambda r: error(404, "not_found", message))
    with pytest.raises(ToolError) as info:
        await call(server, "drive_sign", {"path": "uploads/x.png"})
    assert f"GET /v1/drive/sign failed: 404 not_found: {message}" in str(info.value)
    assert "GET /v1/drive/list?prefix=" in str(info.value)
    assert "try" not in str(info.value)


async def test_drive_sign_says_to_drop_a_leading_drive_folder(configured: Path) -> None:
    message = "there is no file 'drive/uploads/x.png' in the drive"
    server, _ = server_for(lambda r: error(404, "not_found", message))
    with pytest.raises(ToolError, match=r"below \./drive/: try 'uploads/x\.png'"):
        await call(server, "drive_sign", {"path": "drive/uploads/x.png"})


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            {"path": "../x"},
            "invalid_path",
            "drive path '../x' has a '..' segment; give a path inside the drive",
        ),
        (
            {"path": "a.png", "ttl": 0},
            "invalid_ttl",
            "ttl '0' is not a whole number of seconds from 1 to 604800",
        ),
    ],
)
async def test_drive_sign_passes_the_drives_refusals(
    configured: Path, args: dict[str, Any], code: str, message: str
) -> None:
    server, _ = server_for(lambda r: error(400, code, message))
    with pytest.raises(ToolError) as info:
        await call(server, "drive_sign", args)
    assert str(info.value).endswith(f"GET /v1/drive/sign failed: 400 {code}: {message}")


# -- docs tools ----------------------------------------------------------------------


async def test_docs_tools() -> None:
    server = create_server()
    listed = (await call(server, "list_docs"))["docs"]
    assert [d["slug"] for d in listed][:2] == ["overview", "quickstart"]
    assert listed[0]["uri"] == "purasbackend://docs/overview"
    assert all(d["title"] and d["summary"] for d in listed)
    text = await call(server, "read_doc", {"slug": "mcp-tools"})
    assert text.startswith("# MCP tools")
    hits = await call(server, "search_docs", {"query": "cancel a running job", "limit": 2})
    assert 1 <= len(hits) <= 2
    assert set(hits[0]) == {"slug", "title", "score", "section", "snippet"}
    with pytest.raises(ToolError, match="no doc page 'nope'"):
        await call(server, "read_doc", {"slug": "nope"})
    with pytest.raises(ToolError, match="no searchable words"):
        await call(server, "search_docs", {"query": "the a of"})
    with pytest.raises(ToolError, match="limit must be between 1 and 20"):
        await call(server, "search_docs", {"query": "job", "limit": 0})


# -- feedback and secrets ------------------------------------------------------------

ROW = {
    "job_id": "j1",
    "end_user_id": "u1",
    "rating": 1,
    "comment": "good",
    "created_at": "2026-12-01T00:00:00Z",
    "updated_at": "2026-12-01T00:00:00Z",
}


async def test_feedback_tools_call_the_job_feedback_endpoints(configured: Path) -> None:
    def gateway(r: httpx.Request) -> httpx.Response:
        if r.url.path.endswith("/stats"):
            return httpx.Response(200, json={"up": 1, "down": 0, "count": 1, "score": 1})
        if r.method == "GET":
            return httpx.Response(200, json={"feedback": [ROW]})
        return httpx.Response(200, json=ROW)

    server, gw = server_for(gateway)
    args = {"job_id": "j1", "rating": 1, "comment": "good", "end_user_id": "u1"}
    assert await call(server, "submit_job_feedback", args) == ROW
    assert (gw.last.method, gw.last.url.path) == ("POST", "/v1/jobs/j1/feedback")
    assert json.loads(gw.last.content) == {"rating": 1, "comment": "good", "end_user_id": "u1"}
    await call(server, "submit_job_feedback", {"job_id": "j1", "comment": "only words"})
    assert json.loads(gw.last.content) == {"rating": 0, "comment": "only words", "end_user_id": ""}
    assert await call(server, "list_job_feedback", {"job_id": "j1"}) == {"feedback": [ROW]}
    assert gw.last.url.path == "/v1/jobs/j1/feedback"
    stats = await call(server, "job_feedback_stats", {"job_id": "j1"})
    assert stats == {"up": 1, "down": 0, "count": 1, "score": 1}
    assert gw.last.url.path == "/v1/jobs/j1/feedback/stats"
    # An id never adds a path segment.
    await call(server, "list_job_feedback", {"job_id": "../keys"})
    assert gw.last.url.raw_path == b"/v1/jobs/..%2Fkeys/feedback"


async def test_feedback_is_checked_before_it_is_sent(configured: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=ROW))
    with pytest.raises(
        ToolError, match=r"rating must be -1 \(down\), 0 \(no thumb\) or 1 \(up\); got 2"
    ):
        await call(server, "submit_job_feedback", {"job_id": "j1", "rating": 2})
    with pytest.raises(ToolError, match="or a non-empty comment"):
        await call(server, "submit_job_feedback", {"job_id": "j1", "comment": "  "})
    assert gw.requests == []


async def test_feedback_errors_say_what_to_fix(configured: Path) -> None:
    server, _ = server_for(
        lambda r: error(404, "job_not_found", "job 'j9' not found in this project")
    )
    with pytest.raises(
        ToolError,
        match=r"POST /v1/jobs/j9/feedback failed: 404 job_not_found.*"
        r"list_jobs\(\) shows",
    ):
        await call(server, "submit_job_feedback", {"job_id": "j9", "rating": -1})
    server, _ = server_for(lambda r: error(400, "invalid_feedback", "`comment` is 5000 chars"))
    with pytest.raises(ToolError, match=r"400 invalid_feedback: `comment` is 5000 chars \(pass"):
        await call(server, "submit_job_feedback", {"job_id": "j1", "comment": "x" * 5000})


async def test_secret_tools_send_the_value_in_the_body_only(configured: Path) -> None:
    listed = [{"name": "OPENAI_API_KEY", "created_at": "t", "updated_at": "t"}]

    def gateway(r: httpx.Request) -> httpx.Response:
        if r.method == "GET":
            return httpx.Response(200, json={"secrets": listed})
        if r.method == "PUT":
            return httpx.Response(200, json=listed[0])
        return httpx.Response(200, json={"name": "OPENAI_API_KEY", "deleted": True})

    server, gw = server_for(gateway)
    assert await call(server, "list_secrets") == {"secrets": listed}
    assert (gw.last.method, gw.last.url.path) == ("GET", "/v1/secrets")
    out = await call(server, "set_secret", {"name": "OPENAI_API_KEY", "value": "sk-123 secret"})
    assert out == listed[0]
    assert "sk-123" not in json.dumps(out)
    assert (gw.last.method, gw.last.url.path) == ("PUT", "/v1/secrets/OPENAI_API_KEY")
    assert json.loads(gw.last.content) == {"value": "sk-123 secret"}
    assert "sk-123" not in str(gw.last.url)
    said = await call(server, "delete_secret", {"name": "OPENAI_API_KEY"})
    assert said == "deleted secret OPENAI_API_KEY"
    assert (gw.last.method, gw.last.url.path) == ("DELETE", "/v1/secrets/OPENAI_API_KEY")


async def test_a_bad_secret_name_is_refused_before_anything_is_sent(configured: Path) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json={}))
    for name in ("lower", "1ST", "A-B", "../X", ""):
        with pytest.raises(ToolError, match="is not a secret name: use capital letters"):
            await call(server, "set_secret", {"name": name, "value": "v"})
        with pytest.raises(ToolError, match="is not a secret name"):
            await call(server, "delete_secret", {"name": name})
    assert gw.requests == []


async def test_an_unknown_secret_says_how_to_list_them(configured: Path) -> None:
    server, _ = server_for(lambda r: error(404, "secret_not_found", "no secret named 'X_Y'"))
    with pytest.raises(ToolError, match=r"404 secret_not_found.*list_secrets\(\) shows"):
        await call(server, "delete_secret", {"name": "X_Y"})


# -- over the MCP protocol (in memory) -----------------------------------------------


async def test_errors_reach_an_mcp_client_as_tool_errors(configured: Path) -> None:
    server, _ = server_for(lambda r: error(409, "job_finished", "job j1 already failed"))
    async with Client(server) as client:
        result = await client.call_tool("cancel_job", {"job_id": "j1"})
        assert result.is_error
        assert "job j1 already failed" in result.content[0].text  # type: ignore[union-attr]
        ok = await client.call_tool("read_doc", {"slug": "overview"})
        assert not ok.is_error


# -- skills, pages, resources, argument errors -----------------------------------------

SKILL: dict[str, Any] = {
    "name": "echo",
    "kind": "deterministic",
    "entrypoint": "main.py:run",
    "description": "Echoes its text",
    "model": None,
    "disable_bash": False,
    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
    "output_schema": None,
    "tools": [],
    "timeout_seconds": None,
    "max_steps": None,
    "max_cost_micros": None,
}


async def test_list_skills_gives_each_skill_with_its_schemas(configured: Path) -> None:
    server, gw = server_for(
        lambda r: httpx.Response(200, json={"deployment_id": "d1", "skills": [SKILL]})
    )
    out = await call(server, "list_skills")
    assert gw.last.url.path == "/v1/skills"
    assert out == {"deployment_id": "d1", "skills": [SKILL]}
    tool = next(t for t in await server.list_tools() if t.name == "list_skills")
    assert tool.input_schema["properties"] == {}
    schema = tool.output_schema or {}
    assert set(schema["required"]) == {"deployment_id", "skills"}
    skill_schema = schema["$defs"]["SkillInfo"]["properties"]
    assert {"name", "input_schema", "output_schema"} <= set(skill_schema)


async def test_list_skills_before_any_push(configured: Path) -> None:
    server, _ = server_for(
        lambda r: httpx.Response(200, json={"deployment_id": None, "skills": []})
    )
    assert await call(server, "list_skills") == {"deployment_id": None, "skills": []}


async def test_list_jobs_pages_with_the_cursor(configured: Path) -> None:
    def gateway(r: httpx.Request) -> httpx.Response:
        if r.url.params.get("cursor") == "c2":
            return httpx.Response(200, json={"jobs": [job(id="j0")], "next_cursor": None})
        return httpx.Response(200, json={"jobs": [job()], "next_cursor": "c2"})

    server, gw = server_for(gateway)
    first = await call(server, "list_jobs", {"limit": 1})
    assert first["next_cursor"] == "c2"
    second = await call(server, "list_jobs", {"limit": 1, "cursor": first["next_cursor"]})
    assert gw.last.url.params["cursor"] == "c2"
    assert second == {"jobs": [job(id="j0")], "next_cursor": None}
    tools = {t.name: t for t in await server.list_tools()}
    for name, key in [
        ("list_jobs", "jobs"),
        ("list_deployments", "deployments"),
        ("list_secrets", "secrets"),
        ("list_job_feedback", "feedback"),
        ("list_docs", "docs"),
    ]:
        assert key in (tools[name].output_schema or {}).get("properties", {}), name
    assert "next_cursor" in (tools["list_jobs"].output_schema or {})["properties"]


async def test_every_shipped_doc_is_a_markdown_resource() -> None:
    server = create_server()
    resources = {str(r.uri): r for r in await server.list_resources()}
    listed = (await call(server, "list_docs"))["docs"]
    assert set(resources) == {d["uri"] for d in listed}
    page = resources["purasbackend://docs/mcp-tools"]
    assert page.mime_type == "text/markdown"
    assert page.name == "mcp-tools"
    [content] = await server.read_resource("purasbackend://docs/mcp-tools")
    text = await call(server, "read_doc", {"slug": "mcp-tools"})
    assert getattr(content, "content", None) == text


@pytest.mark.parametrize(
    ("tool", "args", "expected"),
    [
        ("list_jobs", {"limit": "many"}, "`limit` should be a valid integer"),
        ("submit_job", {"skill": "echo", "inputs": [1, 2]}, "`inputs` should be a valid dict"),
        ("submit_job", {}, "`skill` is required"),
        ("tail_job", {"job_id": 5}, "`job_id` should be a valid string (got 5)"),
    ],
)
async def test_wrong_argument_types_say_what_to_fix(
    configured: Path, tool: str, args: dict[str, Any], expected: str
) -> None:
    server, gw = server_for(lambda r: httpx.Response(200, json=job()))
    with pytest.raises(ToolError) as err:
        await call(server, tool, args)
    text = str(err.value)
    assert text.startswith(f"{tool}: invalid arguments: ")
    assert expected in text
    assert "call again" in text
    assert "pydantic" not in text
    assert "validation error" not in text
    assert gw.requests == []
