"""Poisoning the event log does not take the API down, for anybody.

The attacker writes straight into PURAS_EVENTS (past the gateway and its validation):
a job whose inputs hold a NUL (Postgres jsonb cannot store it), bytes that are not JSON
on a job subject and on a key subject (the gateway's in-memory views follow keys), an
event of a type nobody knows, and a known type with a field of the wrong type. The
whole stack runs as processes (nats-server, Postgres, five services). Afterwards the
gateway still answers (the same process), another project's job runs and is listed,
``/readyz`` says degraded with the count, ``puras admin quarantine`` lists, shows,
retries and resolves them, and resolving clears the degraded state, also across a
gateway restart that replays the log.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from puras_bundle import pack_project
from puras_cli.devstack import Stack
from puras_cli.devstack.stack import claim_work_dir
from puras_common.events.base import encode_event
from puras_common.events.subjects import EVENTS_STREAM, event_subject
from puras_common.events.types import JobQueued

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PROJECT_DIR = Path(__file__).resolve().parents[1] / "e2e" / "project"
PURAS = Path(sys.executable).parent / "puras"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="puras-poison-"))
    s = Stack(work, fsync=False)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        for pids in work.rglob("stack.pids"):
            claim_work_dir(pids.parent)
        shutil.rmtree(work, ignore_errors=True)


def _queued(project: str, job: str, inputs: Any) -> bytes:
    ev = JobQueued(
        skill="echo",
        inputs={},
        deployment_id=None,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    env = msgspec.json.decode(
        encode_event(ev, event_id=f"{job}:queued", project_id=project, aggregate_id=job)
    )
    env["data"]["inputs"] = inputs
    return msgspec.json.encode(env)


async def _publish_all(nats_url: str, messages: list[tuple[str, bytes]]) -> list[int]:
    from puras_common.bus import connect

    bus = await connect(nats_url, name="attacker")
    try:
        return [
            int((await bus.js.publish(subj, data, stream=EVENTS_STREAM)).seq)
            for subj, data in messages
        ]
    finally:
        await bus.close()


async def _wait_db(dsn: str, check: Callable[[asyncpg.Connection], Any], timeout: float) -> None:
    """Until ``check(conn)`` is true: evaluated now and on every projector notification
    (checkpoint moved, quarantine changed), never on a timer."""
    conn = await asyncpg.connect(dsn)
    woke = asyncio.Event()

    def wake(*_args: Any) -> None:
        woke.set()

    try:
        for channel in ("puras_projection", "puras_quarantine"):
            await conn.add_listener(channel, wake)
        async with asyncio.timeout(timeout):
            while not await check(conn):
                await woke.wait()
                woke.clear()
    finally:
        await conn.close()


def _checkpoint_at(name: str, seq: int) -> Callable[[asyncpg.Connection], Any]:
    async def check(conn: asyncpg.Connection) -> bool:
        v = await conn.fetchval("SELECT last_seq FROM projection_checkpoints WHERE name = $1", name)
        return v is not None and v >= seq

    return check


def _open_entries(n: int) -> Callable[[asyncpg.Connection], Any]:
    async def check(conn: asyncpg.Connection) -> bool:
        try:
            got = await conn.fetchval(
                "SELECT count(*) FROM projection_quarantine WHERE resolved_at IS NULL"
            )
        except asyncpg.UndefinedTableError:
            return False
        return int(got) == n

    return check


def _admin(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PURAS_NATS_URL": stack.nats_url,
        "PURAS_DATABASE_URL": stack.database_url,
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [str(PURAS), "admin", "quarantine", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _readyz(stack: Stack) -> tuple[int, dict[str, Any]]:
    r = httpx.get(stack.api_base + "/readyz", timeout=10)
    return r.status_code, r.json()


def test_poisoned_log_leaves_every_tenant_served_and_the_operator_informed(
    stack: Stack,
) -> None:
    attacker = stack.bootstrap_project("attacker")
    victim = stack.bootstrap_project("victim")
    gateway_pid = stack.service_pids()["gateway"]
    a = attacker.project_id
    jobs = [uuid.uuid4().hex for _ in range(4)]
    key_id = uuid.uuid4().hex[:12]
    unknown = {
        "id": f"{jobs[2]}:x", "type": "job.teleported", "v": 1,
        "at": "2026-01-01T00:00:00Z", "project_id": a, "aggregate_id": jobs[2],
        "data": {"to": "mars"},
    }  # fmt: skip
    seq_nul, seq_junk, seq_unknown, seq_wrong, seq_key = asyncio.run(
        _publish_all(
            stack.nats_url,
            [
                (event_subject(a, "job", jobs[0]), _queued(a, jobs[0], {"text": "a\u0000b"})),
                (event_subject(a, "job", jobs[1]), b"\xff\xfe{{ not json \x00"),
                (event_subject(a, "job", jobs[2]), msgspec.json.encode(unknown)),
                (event_subject(a, "job", jobs[3]), _queued(a, jobs[3], ["not", "an", "object"])),
                (event_subject(a, "key", key_id), b"\x00garbage"),
            ],
        )
    )
    # jobs: NUL, junk, wrong type (the unknown type is skipped by design); keys: junk,
    # which the gateway's in-memory keys view skips too (accounted for by that entry).
    asyncio.run(_wait_db(stack.database_url, _checkpoint_at("jobs", seq_wrong), 60))
    asyncio.run(_wait_db(stack.database_url, _checkpoint_at("keys", seq_key), 60))
    asyncio.run(_wait_db(stack.database_url, _open_entries(4), 60))

    # The gateway kept answering, as the same process: nothing exited.
    assert stack.service_pids()["gateway"] == gateway_pid
    assert stack.wait_for_exit(timeout=0) is None
    status, body = _readyz(stack)
    assert status == 200, body
    assert body["status"] == "degraded"
    assert body["quarantined"] == {"jobs": 3, "keys": 1}
    assert body["quarantined_total"] == 4
    assert "views_skipped" not in body  # the view's skip is the keys entry's sequence

    # Another tenant deploys, runs a job submitted after the attack, and lists it.
    with httpx.Client(
        base_url=stack.api_base,
        headers={"Authorization": f"Bearer {victim.api_key}"},
        timeout=90,
    ) as v:
        r = v.post(
            "/v1/deployments",
            files={"bundle": ("b.zip", pack_project(PROJECT_DIR).data, "application/zip")},
        )
        assert r.status_code == 200, r.text
        r = v.post(
            "/v1/jobs",
            json={"skill": "echo", "inputs": {"text": "still here"}},
            params={"wait": "true", "timeout": 60},
        )
        assert r.status_code == 200, r.text
        job = r.json()
        assert job["status"] == "succeeded", job
        listed = v.get("/v1/jobs").json()
        assert job["id"] in [j["id"] for j in listed["jobs"]]
    with httpx.Client(
        base_url=stack.api_base,
        headers={"Authorization": f"Bearer {attacker.api_key}"},
        timeout=30,
    ) as att:
        assert att.get("/v1/jobs").json()["jobs"] == []  # nothing forged got in

    # The operator sees them.
    out = _admin(stack, "list")
    assert out.returncode == 0, out.stderr
    listed_q = json.loads(out.stdout)
    assert listed_q["count"] == 4
    got = {(e["projection"], e["seq"]) for e in listed_q["quarantined"]}
    assert got == {
        ("jobs", seq_nul),
        ("jobs", seq_junk),
        ("jobs", seq_wrong),
        ("keys", seq_key),
    }
    assert ("jobs", seq_unknown) not in got
    shown = _admin(stack, "show", "jobs", str(seq_nul))
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["event_type"] == "job.queued"
    assert "Unicode" in detail["reason"]
    assert detail["subject"] == event_subject(a, "job", jobs[0])
    assert _admin(stack, "show", "jobs", "999999").returncode != 0

    # Retry through the current code: still refused, so it stays (exit 1, new reason).
    retried = _admin(stack, "retry", "jobs", str(seq_nul))
    assert retried.returncode == 1, retried.stdout + retried.stderr
    assert json.loads(retried.stdout)["applied"] is False

    # Resolving all of them clears the degraded state.
    for projection, seq in sorted(got):
        res = _admin(stack, "resolve", projection, str(seq), "--note", "attack; skipped")
        assert res.returncode == 0, res.stderr
    asyncio.run(_wait_db(stack.database_url, _open_entries(0), 30))
    _wait_ready(stack)
    assert json.loads(_admin(stack, "list").stdout)["count"] == 0
    assert json.loads(_admin(stack, "list", "--all").stdout)["count"] == 4

    # A restart replays the log (views from sequence 1): the same events are met again,
    # stay resolved, and the gateway comes up ready.
    stack.restart_service("gateway")
    status, body = _readyz(stack)
    assert (status, body["status"]) == (200, "ready"), body

    # The rebuild from the log reproduces the live tables and the quarantine.
    env = {
        "PURAS_NATS_URL": stack.nats_url,
        "PURAS_DATABASE_URL": stack.database_url,
        "PATH": "/usr/bin:/bin",
    }
    rebuilt = subprocess.run(
        [str(PURAS), "admin", "rebuild", "all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "DIFFERENT" not in rebuilt.stdout


def _wait_ready(stack: Stack, timeout: float = 10.0) -> None:
    """Until /readyz says ready: the gateway's watcher hears the resolution by NOTIFY and
    counts again; each answer is what we wait on (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = _readyz(stack)
        if status == 200 and body["status"] == "ready":
            return
        assert time.monotonic() < deadline, body
        time.sleep(0.05)  # paces the requests only; the answer is the condition
