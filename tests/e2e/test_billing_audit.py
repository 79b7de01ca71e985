"""The billing audit on the whole stack (SPEC Z3): after grants, jobs and usage that the
real billing service charges, `puras admin audit` and `POST /v1/admin/audit` find the
live tables equal to the log; a tampered usage row, balance or job cost is printed as
a difference and makes the command exit 1."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from puras_cli.devstack import Stack
from puras_common.bus import connect
from puras_common.events.ids import job_usage_id
from puras_common.events.subjects import AGG_JOB
from puras_common.events.types import ModelUsage, UsageRecorded
from stackapi import Api, new_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SLUG = "claude/sonnet-4-6"


def _usage(stack: Stack, project_id: str, job_ids: list[str], steps: int) -> None:
    """Usage events as runners record them, on the jobs' own subjects: the billing
    service charges each one."""

    async def append() -> None:
        bus = await connect(stack.nats_url, name="test-usage")
        try:
            for step in range(100, 100 + steps):
                job = job_ids[step % len(job_ids)]
                await bus.append(
                    UsageRecorded(
                        step=step,
                        provider="anthropic",
                        model=SLUG,
                        upstream_model="claude-x",
                        usage=ModelUsage(input_tokens=37 * step, output_tokens=11 * step),
                        skill="echo",
                    ),
                    project_id=project_id,
                    aggregate=AGG_JOB,
                    aggregate_id=job,
                    event_id=job_usage_id(job, step),
                )
        finally:
            await bus.close()

    asyncio.run(append())


def _cli(stack: Stack) -> subprocess.CompletedProcess[str]:
    env = {
        "PURAS_NATS_URL": stack.nats_url,
        "PURAS_DATABASE_URL": stack.database_url,
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "puras"), "admin", "audit", "--settle", "60"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _http(admin: httpx.Client) -> dict[str, Any]:
    r = admin.post("/v1/admin/audit", params={"settle": "60"}, timeout=180)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _sql(stack: Stack, query: str, *args: object) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(stack.database_url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture
def loaded(stack: Stack, admin: httpx.Client, api: Api) -> Iterator[tuple[Api, list[str]]]:
    """Jobs run, credit granted, and usage charged by billing on those jobs."""
    jobs = [api.run("echo", {"text": str(i)})["id"] for i in range(3)]
    other = new_api(stack, "audit-other")
    try:
        assert other.push().status_code == 200
        jobs_other = [other.run("echo", {"text": "x"})["id"]]
        for pid in (api.project_id, other.project_id):
            r = admin.post(f"/v1/admin/projects/{pid}/credits", json={"micros": 123_456})
            assert r.status_code == 200, r.text
        _usage(stack, api.project_id, jobs, 30)
        _usage(stack, other.project_id, jobs_other, 5)
        # The audit waits for billing to charge what was stored before it began: clean
        # once every usage event is charged and every projection has caught up.
        report = _http(admin)
        assert report["clean"], report["differences"]
        yield api, jobs
    finally:
        other.close()


def test_the_audit_is_clean_after_a_load(
    stack: Stack, admin: httpx.Client, loaded: tuple[Api, list[str]]
) -> None:
    api, jobs = loaded
    cost = api.http.get(f"/v1/jobs/{jobs[0]}").json()["cost_micros"]
    assert cost > 0
    out = _cli(stack)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "result: CLEAN" in out.stdout
    assert "usage_rows: identical" in out.stdout
    report = _http(admin)
    assert report["clean"] is True
    assert report["differences"] == []
    assert 1 <= report["first_seq"] < report["last_seq"]
    assert report["events"] >= 35 * 3  # usage, charge and job cost per billed call
    tables = {t["table"]: t for t in report["tables"]}
    assert tables["usage_rows"]["live_rows"] >= 35
    assert tables["jobs.cost_micros"]["only_live"] == 0


TAMPERS = {
    "usage_rows": (
        "UPDATE usage_rows SET billed_micros = billed_micros + $2 WHERE usage_id = "
        "(SELECT min(usage_id) FROM usage_rows WHERE job_id = $1)"
    ),
    "project_balances": (
        "UPDATE project_balances SET credit_balance_micros = credit_balance_micros + $2 "
        "WHERE project_id = (SELECT project_id FROM jobs WHERE id = $1)"
    ),
    "jobs.cost_micros": "UPDATE jobs SET cost_micros = cost_micros + $2 WHERE id = $1",
}


@pytest.mark.parametrize("table", list(TAMPERS))
def test_a_tampered_row_fails_the_audit_and_is_printed(
    stack: Stack, admin: httpx.Client, loaded: tuple[Api, list[str]], table: str
) -> None:
    _, jobs = loaded
    _sql(stack, TAMPERS[table], jobs[0], 1)
    try:
        out = _cli(stack)
        assert out.returncode == 1, out.stdout + out.stderr
        assert f"DIFFERENCE table_row: {table}: only live:" in out.stdout
        assert f"DIFFERENCE table_row: {table}: only in the log:" in out.stdout
        assert "result: 2 DIFFERENCES" in out.stdout
        report = _http(admin)
        assert report["clean"] is False
        assert [d["kind"] for d in report["differences"]] == ["table_row", "table_row"]
    finally:
        _sql(stack, TAMPERS[table], jobs[0], -1)
    assert _http(admin)["clean"] is True


def test_the_audit_call_is_for_operators_only(stack: Stack, api: Api) -> None:
    r = api.http.post("/v1/admin/audit")
    assert r.status_code == 401, r.text
    anon = httpx.post(f"{stack.api_base}/v1/admin/audit", timeout=10)
    assert anon.status_code == 401


@pytest.mark.parametrize("settle", ["soon", "-1", "301", "nan"])
def test_a_bad_settle_is_a_400_naming_it(admin: httpx.Client, settle: str) -> None:
    r = admin.post("/v1/admin/audit", params={"settle": settle})
    assert r.status_code == 400, r.text
    assert "`settle`" in r.json()["error"]["message"]
