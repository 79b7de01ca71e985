"""The MCP server against the real dev stack, over the real MCP protocol on stdio.

A stack (nats-server, Postgres, the five services) per module and a fresh funded
project per test; ``purasbackend-mcp`` is launched as a subprocess by the ``mcp``
client library with ``PURASBACKEND_CONFIG`` pointing at a temporary file.
"""

from __future__ import annotations

import json
import socket
import stat
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import CallToolResult

from puras_cli.devstack import Stack

E2E = Path(__file__).resolve().parents[2] / "e2e"
sys.path.insert(0, str(E2E))

from stackapi import Api, new_api, start_stack, stop_stack  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
QUICKSTART = ROOT / "examples" / "quickstart"
SERVER_BIN = Path(sys.executable).parent / "purasbackend-mcp"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s, work = start_stack()
    try:
        yield s
    finally:
        stop_stack(s, work)


@pytest.fixture
def project(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Api]:
    """A fresh funded project with nothing deployed."""
    api = new_api(stack, request.node.name)
    try:
        yield api
    finally:
        api.close()


class Mcp:
    """One MCP session with a ``purasbackend-mcp`` subprocess."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def raw(self, tool: str, args: dict[str, Any] | None = None) -> CallToolResult:
        return await self.session.call_tool(tool, args or {}, read_timeout_seconds=120)

    async def call(self, tool: str, args: dict[str, Any] | None = None) -> Any:
        """The tool's answer; fails the test on a tool error."""
        result = await self.raw(tool, args)
        assert not result.is_error, f"{tool}: {self.text(result)}"
        out = result.structured_content
        if out is None:
            return self.text(result)
        if set(out) == {"result"}:
            return out["result"]
        return out

    async def error(self, tool: str, args: dict[str, Any] | None = None) -> str:
        """The message of a call that must fail."""
        result = await self.raw(tool, args)
        assert result.is_error, f"{tool} should have failed: {result}"
        return self.text(result)

    @staticmethod
    def text(result: CallToolResult) -> str:
        return "".join(getattr(c, "text", "") for c in result.content)


@asynccontextmanager
async def mcp_server(config: Path, errlog: Path) -> AsyncIterator[Mcp]:
    params = StdioServerParameters(
        command=str(SERVER_BIN), env={"PURASBACKEND_CONFIG": str(config)}, cwd=str(ROOT)
    )
    with errlog.open("w") as err:
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield Mcp(session)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "purasbackend" / "config.json"


async def test_the_whole_flow_over_stdio(
    stack: Stack, project: Api, config_file: Path, tmp_path: Path
) -> None:
    async with mcp_server(config_file, tmp_path / "server.log") as mcp:
        tools = {t.name for t in (await mcp.session.list_tools()).tools}
        assert {"configure", "push", "submit_job", "tail_job", "search_docs"} <= tools
        assert "drive_sign" in tools
        assert {
            "submit_job_feedback",
            "list_job_feedback",
            "job_feedback_stats",
            "list_secrets",
            "set_secret",
            "delete_secret",
        } <= tools

        # configure: saved (mode 600), checked against the live API.
        text = await mcp.call(
            "configure",
            {"api_base": stack.api_base, "api_key": project.key, "project_id": project.project_id},
        )
        assert "The API accepted the key: 0 deployment(s)" in text
        assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
        assert json.loads(config_file.read_text())["api_key"] == project.key
        shown = await mcp.call("show_config")
        assert shown["api_base"] == stack.api_base
        assert shown["api_key_prefix"] == project.key.split(".")[0]
        assert project.key.split(".")[1] not in json.dumps(shown)

        # push examples/quickstart: active, both skills discovered.
        dep = await mcp.call("push", {"project_dir": str(QUICKSTART), "notes": "mcp e2e"})
        assert dep["active"] is True
        assert {s["name"] for s in dep["skills"]} == {"echo", "hello"}
        assert dep["bundle"]["files"] >= 4
        deployments = (await mcp.call("list_deployments"))["deployments"]
        assert [d["id"] for d in deployments] == [dep["id"]]
        skills = (await mcp.call("list_skills"))["skills"]
        assert {s["name"] for s in skills} == {"echo", "hello"}
        echo = next(s for s in skills if s["name"] == "echo")
        assert echo["input_schema"]["properties"]["text"]

        # submit with wait: the finished job.
        done = await mcp.call(
            "submit_job", {"skill": "echo", "inputs": {"text": "hi"}, "wait": True, "timeout": 30}
        )
        assert done["status"] == "succeeded", done
        assert done["result"] == {"echoed": "hi"}

        # A wait above the ceiling is clamped and the answer says so.
        clamped = await mcp.call(
            "submit_job", {"skill": "echo", "inputs": {"text": "x"}, "wait": True, "timeout": 90}
        )
        assert clamped["status"] == "succeeded"
        assert "waited at most 60 s" in clamped["note"]

        # submit async, then tail_job follows the SSE stream to the end.
        queued = await mcp.call("submit_function_job", {"skill": "echo", "inputs": {"text": "yo"}})
        assert queued["status"] in ("queued", "running", "succeeded")
        tail = await mcp.call("tail_job", {"job_id": queued["id"], "max_seconds": 60})
        assert "timed_out" not in tail
        assert tail["job"]["status"] == "succeeded"
        assert tail["job"]["result"] == {"echoed": "yo"}
        types = [e["type"] for e in tail["events"]]
        assert types[0] == "queued"
        assert "started" in types
        assert types[-1] == "succeeded"
        assert [e["id"] for e in tail["events"]] == sorted(e["id"] for e in tail["events"])

        # get_job and list_jobs see the same jobs, newest first.
        got = await mcp.call("get_job", {"job_id": done["id"]})
        assert got["result"] == {"echoed": "hi"}
        jobs = await mcp.call("list_jobs", {"limit": 10})
        assert [j["id"] for j in jobs["jobs"]] == [queued["id"], clamped["id"], done["id"]]
        assert jobs["next_cursor"] is None
        succeeded = await mcp.call("list_jobs", {"status": "succeeded"})
        assert len(succeeded["jobs"]) == 3
        page = await mcp.call("list_jobs", {"limit": 2})
        assert page["next_cursor"]
        rest = await mcp.call("list_jobs", {"limit": 2, "cursor": page["next_cursor"]})
        assert [j["id"] for j in page["jobs"] + rest["jobs"]] == [j["id"] for j in jobs["jobs"]]
        message = await mcp.error("list_jobs", {"limit": "ten"})
        assert message.startswith("list_jobs: invalid arguments: `limit` should be")

        # cancel a finished job: an error naming its status.
        message = await mcp.error("cancel_job", {"job_id": done["id"]})
        assert "409 job_finished" in message
        assert "succeeded" in message

        # Feedback on a result: one row per end user, replaced when given again.
        row = await mcp.call(
            "submit_job_feedback",
            {"job_id": done["id"], "rating": 1, "comment": "spot on", "end_user_id": "u1"},
        )
        assert (row["job_id"], row["rating"], row["end_user_id"]) == (done["id"], 1, "u1")
        await mcp.call("submit_job_feedback", {"job_id": done["id"], "comment": "anonymous"})
        await mcp.call(
            "submit_job_feedback", {"job_id": done["id"], "rating": -1, "end_user_id": "u1"}
        )
        rows = (await mcp.call("list_job_feedback", {"job_id": done["id"]}))["feedback"]
        assert [(r["end_user_id"], r["rating"]) for r in rows] == [("u1", -1), ("", 0)]
        stats = await mcp.call("job_feedback_stats", {"job_id": done["id"]})
        assert stats == {"up": 0, "down": 1, "count": 2, "score": -1}
        message = await mcp.error(
            "submit_job_feedback", {"job_id": done["id"], "comment": "x" * 4001}
        )
        assert "400 invalid_feedback" in message
        message = await mcp.error("list_job_feedback", {"job_id": "not-a-job"})
        assert "404 job_not_found" in message

        # Secrets: names and times come back, never the value.
        value = "sk-mcp-e2e-0123456789"
        saved = await mcp.call("set_secret", {"name": "MCP_E2E_TOKEN", "value": value})
        assert saved["name"] == "MCP_E2E_TOKEN"
        assert value not in json.dumps(saved)
        listed = (await mcp.call("list_secrets"))["secrets"]
        assert [s["name"] for s in listed] == ["MCP_E2E_TOKEN"]
        assert value not in json.dumps(listed)
        said = await mcp.call("delete_secret", {"name": "MCP_E2E_TOKEN"})
        assert said == "deleted secret MCP_E2E_TOKEN"
        assert await mcp.call("list_secrets") == {"secrets": []}
        message = await mcp.error("delete_secret", {"name": "MCP_E2E_TOKEN"})
        assert "404 secret_not_found" in message
        message = await mcp.error("set_secret", {"name": "bad-name", "value": value})
        assert "is not a secret name" in message
        assert value not in message

        # Errors say what to fix.
        message = await mcp.error("submit_job", {"skill": "nope"})
        assert "404 skill_not_found" in message
        assert "echo" in message
        message = await mcp.error("submit_job", {"skill": "echo", "inputs": {}})
        assert "422 invalid_inputs" in message
        assert "text" in message
        message = await mcp.error("delete_deployment", {"deployment_id": dep["id"]})
        assert "409 deployment_active" in message

        # Docs, shipped with the server.
        docs = (await mcp.call("list_docs"))["docs"]
        assert len(docs) == 13
        resources = (await mcp.session.list_resources()).resources
        assert {str(r.uri) for r in resources} == {d["uri"] for d in docs}
        read = await mcp.session.read_resource("purasbackend://docs/mcp-tools")
        assert "# MCP tools" in getattr(read.contents[0], "text", "")
        assert docs[0]["slug"] == "overview"
        hits = await mcp.call("search_docs", {"query": "cancel a job", "limit": 3})
        assert hits
        assert all(h["snippet"] for h in hits)
        assert "# MCP tools" in await mcp.call("read_doc", {"slug": "mcp-tools"})


async def test_push_refusals_and_an_unreachable_api(
    stack: Stack, project: Api, config_file: Path, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    async with mcp_server(config_file, tmp_path / "server.log") as mcp:
        message = await mcp.error("list_jobs")
        assert "not configured" in message

        # A folder without skills is refused before anything is sent.
        await mcp.call("configure", {"api_base": stack.api_base, "api_key": project.key})
        (tmp_path / "empty").mkdir()
        message = await mcp.error("push", {"project_dir": str(tmp_path / "empty")})
        assert "no skills found" in message

        # A bundle the server refuses: every problem named by file and field.
        bad = tmp_path / "bad" / "skills" / "echo"
        bad.mkdir(parents=True)
        (bad / "skill.yaml").write_text("description: x\nentrypoint: main.py:run\n")
        message = await mcp.error("push", {"project_dir": str(tmp_path / "bad")})
        assert "400 invalid_bundle" in message
        assert "skills/echo/skill.yaml: entrypoint" in message

        # Nothing listening: the message names the api_base it tried.
        text = await mcp.call("configure", {"api_base": dead, "api_key": project.key})
        assert f"cannot reach the Puras API at {dead}" in text
        message = await mcp.error("get_job", {"job_id": "x"})
        assert f"cannot reach the Puras API at {dead}" in message


async def test_drive_sign_links_an_uploaded_file(
    stack: Stack, project: Api, config_file: Path, tmp_path: Path
) -> None:
    data = b"drive bytes \x00\x01 " * 100
    up = project.http.post(
        "/v1/drive/upload", data={"path": "docs/"}, files={"file": ("notes v1.txt", data)}
    )
    assert up.status_code == 200, up.text
    assert up.json()["drive_path"] == "docs/notes v1.txt"
    other = new_api(stack, "drive-sign-other-project")
    try:
        mine = other.http.post("/v1/drive/upload", files={"file": ("only-mine.txt", b"x")})
        assert mine.status_code == 200, mine.text
        mine_path = mine.json()["drive_path"]
    finally:
        other.close()

    async with mcp_server(config_file, tmp_path / "server.log") as mcp:
        await mcp.call("configure", {"api_base": stack.api_base, "api_key": project.key})
        signed = await mcp.call("drive_sign", {"path": "docs/notes v1.txt", "ttl": 120})
        assert set(signed) == {"url", "expires_at"}
        assert signed["url"].startswith(f"{stack.api_base}/v1/drive/file/{project.project_id}/")

        # The URL needs no key: anyone holding it reads the file until it expires.
        async with httpx.AsyncClient(timeout=30) as anon:
            got = await anon.get(signed["url"])
            assert got.status_code == 200, got.text
            assert got.content == data
            longer = await mcp.call("drive_sign", {"path": "docs/notes v1.txt"})
            assert longer["expires_at"] > signed["expires_at"]  # the 1 h default
            forged = await anon.get(signed["url"].replace("sig=", "sig=0"))
            assert forged.status_code == 403

        # Refusals say what to fix; another project's file is simply not there.
        message = await mcp.error("drive_sign", {"path": "docs/missing.txt"})
        assert "404 not_found" in message
        assert "GET /v1/drive/list?prefix=" in message
        message = await mcp.error("drive_sign", {"path": mine_path})
        assert "404 not_found" in message
        message = await mcp.error("drive_sign", {"path": "drive/docs/notes v1.txt"})
        assert "try 'docs/notes v1.txt'" in message
        message = await mcp.error("drive_sign", {"path": "../docs/notes v1.txt"})
        assert "400 invalid_path" in message
        message = await mcp.error("drive_sign", {"path": "docs/notes v1.txt", "ttl": 0})
        assert "400 invalid_ttl" in message


SLOW_SKILL = """\
description: Sleep, then answer.
entrypoint: main.py:run
input_schema: {type: object, properties: {seconds: {type: number}}}
output_schema: {type: object}
"""
SLOW_MAIN = """\
import time


def run(inputs):
    time.sleep(inputs.get("seconds", 30))
    return {}
"""


async def test_tail_job_deadline_and_cancel_of_a_running_job(
    stack: Stack, project: Api, config_file: Path, tmp_path: Path
) -> None:
    skill = tmp_path / "slow-project" / "skills" / "slow"
    skill.mkdir(parents=True)
    (skill / "skill.yaml").write_text(SLOW_SKILL)
    (skill / "main.py").write_text(SLOW_MAIN)
    async with mcp_server(config_file, tmp_path / "server.log") as mcp:
        await mcp.call("configure", {"api_base": stack.api_base, "api_key": project.key})
        await mcp.call("push", {"project_dir": str(skill.parents[1])})
        job = await mcp.call("submit_job", {"skill": "slow", "inputs": {"seconds": 60}})

        # The deadline ends the follow, not the job.
        tail = await mcp.call("tail_job", {"job_id": job["id"], "max_seconds": 1.5})
        assert tail["timed_out"] is True
        assert tail["job"]["status"] in ("queued", "running")
        assert tail["events"][0]["type"] == "queued"
        assert "call tail_job again" in tail["note"]

        cancelled = await mcp.call("cancel_job", {"job_id": job["id"]})
        assert cancelled["status"] == "cancelled"
        tail = await mcp.call("tail_job", {"job_id": job["id"], "max_seconds": 30})
        assert "timed_out" not in tail
        assert tail["job"]["status"] == "cancelled"
        assert tail["events"][-1]["type"] == "cancelled"
        # Cancelling a cancelled job is a no-op.
        again = await mcp.call("cancel_job", {"job_id": job["id"]})
        assert again["status"] == "cancelled"
