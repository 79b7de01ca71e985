"""Project secrets end to end (X1, X2): set, list by name, overwrite and delete over HTTP;
a deterministic skill, a user tool and ``bash`` in an agent run see them as env vars,
and what they print of them is ``***`` in every event; the master key rotated with no
job failing; then the whole event stream, every table and every service log are searched
for every value used: nothing.

One stack per module (its runner reads secrets afresh for every job: TTL 0), pointed at
the scripted fake providers for the agent run; a fresh project per test.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from click.testing import CliRunner
from fake_providers import FakeProviders, reply_tool
from stack_fixtures import serve_stack

from puras_cli.context import CliContext
from puras_cli.devstack import Stack
from puras_cli.main import cli
from puras_common.secret_box import generate_key
from stackapi import Api, new_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PROJECT = Path(__file__).parent / "secrets_project"

USED: set[str] = set()
"""Every value a test of this module set: the last test searches the stack for them."""


def _value(tag: str) -> str:
    value = f"{tag}-{secrets.token_urlsafe(24)}"
    USED.add(value)
    return value


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    with FakeProviders.in_thread() as f:
        yield f


@pytest.fixture(scope="module")
def stack(fake: FakeProviders) -> Iterator[Stack]:
    yield from serve_stack(
        {
            "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
            "ANTHROPIC_API_KEY": "sk-ant-test-key",
            "PURAS_RUNNER_SECRETS_TTL_S": "0",
        }
    )


@pytest.fixture
def sapi(stack: Stack, fake: FakeProviders, request: pytest.FixtureRequest) -> Iterator[Api]:
    fake.anthropic.reset()
    a = new_api(stack, request.node.name)
    r = a.push(PROJECT, notes="secrets")
    assert r.status_code == 200, r.text
    try:
        yield a
    finally:
        a.close()


def _put(api: Api, name: str, value: str) -> dict[str, Any]:
    r = api.http.put(f"/v1/secrets/{name}", json={"value": value})
    assert r.status_code == 200, r.text
    assert value not in r.text
    return r.json()  # type: ignore[no-any-return]


def _names(api: Api) -> list[str]:
    r = api.http.get("/v1/secrets")
    assert r.status_code == 200, r.text
    listed = r.json()["secrets"]
    assert all(set(s) == {"name", "created_at", "updated_at"} for s in listed)
    return [s["name"] for s in listed]


def _job_text(api: Api, job: dict[str, Any]) -> str:
    """The job as the API shows it and every one of its events, as one text."""
    got = api.http.get(f"/v1/jobs/{job['id']}").json()
    return json.dumps([got, api.events(job["id"])])


def test_a_skill_sees_its_secret_and_every_event_shows_it_masked(sapi: Api) -> None:
    value = _value("tok")
    out = _put(sapi, "API_TOKEN", value)
    assert out["name"] == "API_TOKEN"
    assert _names(sapi) == ["API_TOKEN"]
    job = sapi.run("reveal", {"name": "API_TOKEN"})
    assert job["status"] == "succeeded", job
    assert job["result"] == {"length": len(value), "via_sdk": True}
    text = _job_text(sapi, job)
    assert value not in text
    assert value[: len(value) // 2] not in text  # the half printed before the flush
    logs = [
        line for e in sapi.events(job["id"]) if e["type"] == "log" for line in e["payload"]["lines"]
    ]
    assert "whole: ***" in logs
    assert "split: *** end" in logs
    assert "stderr: ***" in logs
    # An error that quotes it is masked too.
    failed = sapi.run("reveal", {"name": "API_TOKEN", "fail": True})
    assert failed["status"] == "failed"
    assert "failing with ***" in failed["error"]
    assert value not in _job_text(sapi, failed)


def test_overwrite_and_delete_reach_the_next_job(sapi: Api) -> None:
    first, second = _value("first"), _value("second-longer")
    created = _put(sapi, "ROTATING", first)
    updated = _put(sapi, "ROTATING", second)
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] > created["updated_at"]
    assert _names(sapi) == ["ROTATING"]
    job = sapi.run("reveal", {"name": "ROTATING"})
    assert job["result"]["length"] == len(second)
    gone = sapi.http.delete("/v1/secrets/ROTATING")
    assert gone.status_code == 200, gone.text
    assert _names(sapi) == []
    again = sapi.http.delete("/v1/secrets/ROTATING")
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "secret_not_found"
    after = sapi.run("reveal", {"name": "ROTATING"})
    assert after["status"] == "failed"
    assert "ROTATING" in after["error"]


def test_a_multi_line_secret_is_masked_line_by_line(sapi: Api) -> None:
    body = "\n".join(secrets.token_urlsafe(30) for _ in range(3))
    pem = f"-----BEGIN TEST KEY-----\n{body}\n-----END TEST KEY-----"
    USED.update(body.splitlines())
    _put(sapi, "PEM_KEY", pem)
    job = sapi.run("reveal", {"name": "PEM_KEY"})
    assert job["result"]["length"] == len(pem)
    text = _job_text(sapi, job)
    for line in body.splitlines():
        assert line not in text


def test_bad_names_and_values_are_refused_without_echoing_them(sapi: Api) -> None:
    value = _value("refused")
    for name in ("api_token", "MY.KEY", "1ST", "PURAS_JOB_TOKEN"):
        r = sapi.http.put(f"/v1/secrets/{name}", json={"value": value})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "invalid_secret_name"
        assert value not in r.text
    for body in ({"value": ""}, {"value": 7}, {"val": value}, {"value": value, "x": 1}):
        r = sapi.http.put("/v1/secrets/GOOD_NAME", json=body)
        assert r.status_code == 400, r.text
        assert value not in r.text
    broken = sapi.http.put(
        "/v1/secrets/GOOD_NAME",
        content=b'{"value": "' + value.encode(),
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 400
    assert value not in broken.text
    big = sapi.http.put("/v1/secrets/GOOD_NAME", json={"value": "v" * (64 * 1024 + 1)})
    assert big.status_code == 413
    assert _names(sapi) == []
    missing = sapi.http.delete("/v1/secrets/NEVER_SET")
    assert missing.status_code == 404


def test_bash_and_a_user_tool_in_an_agent_run_see_it_masked(sapi: Api, fake: FakeProviders) -> None:
    value = _value("agent")
    _put(sapi, "AGENT_TOKEN", value)
    fake.anthropic.script(
        reply_tool("bash", {"command": 'echo "tok=$AGENT_TOKEN"; echo "len=${#AGENT_TOKEN}"'}),
        reply_tool("peek", {"name": "AGENT_TOKEN"}),
        reply_tool("set_output", {"answer": "done"}),
    )
    job = sapi.run("shell", {"prompt": "look"})
    assert job["status"] == "succeeded", job
    results = [e["payload"] for e in sapi.events(job["id"]) if e["type"] == "tool_result"]
    bash_text = json.dumps(results[0])
    assert "tok=***" in bash_text
    assert f"len={len(value)}" in bash_text
    assert str(len(value)) in json.dumps(results[1])
    assert "***" in json.dumps(results[1])
    assert value not in _job_text(sapi, job)
    # What the model was sent holds no value either.
    assert value not in json.dumps(fake.anthropic.requests)


def test_another_project_sees_none_of_them(stack: Stack, sapi: Api) -> None:
    value = _value("mine")
    _put(sapi, "MINE", value)
    other = new_api(stack, "secrets-other")
    try:
        assert other.push(PROJECT, notes="other").status_code == 200
        assert _names(other) == []
        assert other.http.delete("/v1/secrets/MINE").status_code == 404
        job = other.run("reveal", {"name": "MINE"})
        assert job["status"] == "failed"  # not in its environment
    finally:
        other.close()
    assert _names(sapi) == ["MINE"]


def test_the_master_key_rotates_with_no_job_failing(stack: Stack, sapi: Api) -> None:
    value = _value("rotated")
    _put(sapi, "LONG_LIVED", value)
    old, new = stack.secrets_key, generate_key()
    # Step 1: every holder knows both keys, the new one as current.
    stack.set_secrets_keys(new, [old])
    stack.restart_service("runner")
    stack.restart_service("gateway")
    assert sapi.run("reveal", {"name": "LONG_LIVED"})["result"]["length"] == len(value)
    # Step 2: re-seal everything under the new key (the documented command).
    obj = CliContext(
        environ={"PURAS_API_BASE": stack.api_base, "PURAS_ADMIN_TOKEN": stack.admin_token},
        cwd=Path("/"),
    )
    res = CliRunner().invoke(cli, ["admin", "secrets", "rotate"], obj=obj)
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["resealed"] >= 1
    assert report["unreadable"] == []
    # Step 3: the old key is dropped; everything still opens.
    stack.set_secrets_keys(new)
    stack.restart_service("runner")
    stack.restart_service("gateway")
    job = sapi.run("reveal", {"name": "LONG_LIVED"})
    assert job["status"] == "succeeded", job
    assert job["result"]["length"] == len(value)
    again = CliRunner().invoke(cli, ["admin", "secrets", "rotate"], obj=obj)
    assert json.loads(again.output)["resealed"] == 0


async def _stream_text(nats_url: str) -> str:
    from nats.js.errors import NotFoundError

    from puras_common.bus import connect

    bus = await connect(nats_url, name="test-secrets-sweep")
    chunks: list[bytes] = []
    try:
        for info in await bus.js.streams_info():
            name = info.config.name
            assert name is not None
            if not info.state.messages:
                continue
            for seq in range(max(1, info.state.first_seq), info.state.last_seq + 1):
                try:
                    msg = await bus.js.get_msg(name, seq)
                except NotFoundError:
                    continue
                chunks.append((msg.subject or "").encode() + b" " + (msg.data or b""))
                chunks.extend(f"{k}={v}".encode() for k, v in (msg.headers or {}).items())
    finally:
        await bus.close()
    return b"\n".join(chunks).decode("utf-8", "replace")


async def _tables_text(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        out: list[str] = []
        for t in tables:
            rows = await conn.fetch(
                f'SELECT t::text AS row FROM "{t["schemaname"]}"."{t["tablename"]}" t'  # noqa: S608
            )
            out.extend(r["row"] for r in rows)
        assert any(t["tablename"] == "secrets" for t in tables)
        return "\n".join(out)
    finally:
        await conn.close()


def test_no_value_is_anywhere_in_the_log_the_tables_or_the_logs(stack: Stack, sapi: Api) -> None:
    value = _value("sweep")
    _put(sapi, "SWEEP", value)
    assert sapi.run("reveal", {"name": "SWEEP"})["status"] == "succeeded"
    stream = asyncio.run(_stream_text(stack.nats_url))
    tables = asyncio.run(_tables_text(stack.database_url))
    logs = "\n".join(
        p.read_text(errors="replace") for p in stack.logs_dir.rglob("*") if p.is_file()
    )
    # The searches do see what they search: the secret's name and its events are there.
    assert "secret.set" in stream
    assert "SWEEP" in stream
    assert "SWEEP" in tables
    assert len(USED) >= 8
    for v in sorted(USED):
        assert v not in stream, "a value is in the event stream"
        assert v not in tables, "a value is in a Postgres table"
        assert v not in logs, "a value is in a service log"
