"""A job's cost (J8): ``GET /v1/jobs/{id}/usage`` rows and ``cost_micros`` on every JobOut
the API shows, from the job's own ``job.cost`` events, one of them billed after the end;
through the real HTTP app over the gateway fakes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import msgspec
import pytest
from gateway_fakes import (
    T0,
    FakeCommands,
    FakeJobLog,
    FakeLiveViews,
    FakeReadViews,
    FixedClock,
    Unused,
)

from puras_common.auth import generate_key
from puras_common.events import AnyEvent, Envelope, JobStarted, JobSucceeded
from puras_common.events.types import BilledCall, JobCharged, JobRecord
from puras_common.views.keys import KeyInfo
from puras_gateway.bootstrap import Gateway, build
from puras_gateway.domain.job_events import JobEvent, api_events, fold
from puras_gateway.entrypoints.http import create_app
from puras_gateway.settings import GatewaySettings

T1 = T0 + timedelta(seconds=1)
T2 = T0 + timedelta(seconds=2)
T3 = T0 + timedelta(seconds=3)
P = "0a1b2c3d-0000-7000-8000-000000000001"
OTHER = "0a1b2c3d-0000-7000-8000-000000000002"


class ProjectedReads(FakeReadViews):
    """The jobs projection as it stands after the log's events up to ``upto`` (stream
    sequence): it trails the log by whatever came later."""

    def __init__(self, log: FakeJobLog) -> None:
        self._log = log
        self.upto = 0

    def _applied(self, project_id: str, job_id: str) -> list[JobEvent]:
        return [e for e in self._log.jobs.get((project_id, job_id), []) if e.seq <= self.upto]

    async def get_job(self, project_id: str, job_id: str) -> JobRecord | None:
        found = await self.get_job_at(project_id, job_id)
        return found[0] if found else None

    async def get_job_at(self, project_id: str, job_id: str) -> tuple[JobRecord, int, int] | None:
        applied = self._applied(project_id, job_id)
        job = fold(applied)
        return (job, applied[-1].seq, len(applied)) if job is not None else None

    async def job_events(self, project_id: str, job_id: str) -> list[dict[str, Any]]:
        return api_events(self._applied(project_id, job_id))


class Stack:
    def __init__(self) -> None:
        self.queue, self.log = FakeCommands(), FakeJobLog()
        self.reads = ProjectedReads(self.log)
        self.views = FakeLiveViews()
        self.views.deploy(P, "d1", ["echo"], T0)
        self.views.deploy(OTHER, "d2", ["echo"], T0)
        self.seq = 100
        self.keys = {P: self._key(P), OTHER: self._key(OTHER)}
        settings = GatewaySettings(env="dev", read_your_writes_s=0.01)
        self.gateway = Gateway(settings)
        self.gateway.app = build(
            settings,
            events=Unused(),
            commands=self.queue,
            views=self.views,
            reads=self.reads,
            job_log=self.log,
            idempotency=None,
            billing=Unused(),
            bundles=Unused(),
            watcher=Unused(),
            clock=FixedClock(),
        )

    def _key(self, project_id: str) -> str:
        k = generate_key()
        self.views.keys.keys[k.prefix] = KeyInfo(
            prefix=k.prefix, project_id=project_id, secret_sha256=k.secret_sha256, created_at=T0
        )
        return k.key

    def auth(self, project_id: str = P) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[project_id]}"}

    def append(self, job_id: str, ev: AnyEvent, event_id: str, at: Any = T2) -> int:
        self.seq += 1
        events = self.log.jobs[(P, job_id)]
        env = Envelope(
            id=event_id, type=ev.type, v=ev.version, at=at, project_id=P, aggregate_id=job_id
        )
        events.append(JobEvent(idx=len(events) + 1, envelope=env, event=ev, seq=self.seq))
        return self.seq


def _charge(job_id: str, usage_id: str, step: int, billed: int, **tokens: int) -> JobCharged:
    call = BilledCall(
        usage_id=usage_id,
        job_id=job_id,
        step=step,
        provider="anthropic",
        model="claude/sonnet-4-6",
        billed_micros=billed,
        registry_version="2026-12-01",
        margin_pct=20,
    )
    return JobCharged(call=msgspec.structs.replace(call, **tokens))


@pytest.fixture
async def stack() -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    s = Stack()
    transport = httpx.ASGITransport(app=create_app(s.gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        yield s, c


async def _charged_job(s: Stack, c: httpx.AsyncClient) -> tuple[str, int]:
    """A job billed once before its end and once after it; the seq of its terminal event."""
    r = await c.post("/v1/jobs", json={"skill": "echo", "inputs": {}}, headers=s.auth())
    assert r.status_code == 200, r.text
    job_id = r.json()["id"]
    s.log.admit(s.queue.take(P, job_id), T0)
    s.append(job_id, JobStarted(attempt=1, deployment_id="d1", runner_id="r", started_at=T1), "s")
    tokens = {"input_tokens": 1200, "output_tokens": 80, "cache_read_tokens": 4000}
    s.append(job_id, _charge(job_id, "u1", 1, 7_250, **tokens), "cost:u1", at=T1)
    done = JobSucceeded(result={"ok": True}, attempt=1, started_at=T1, finished_at=T2)
    end = s.append(job_id, done, "terminal")
    # Billing priced the last call after the runner had ended the job.
    s.append(job_id, _charge(job_id, "u2", 2, 1_999, cache_write_tokens=50), "cost:u2", at=T3)
    return job_id, end


ROW1 = {
    "provider": "anthropic",
    "model": "claude/sonnet-4-6",
    "input_tokens": 1200,
    "output_tokens": 80,
    "cache_read_tokens": 4000,
    "cache_write_tokens": 0,
    "billed_micros": 7_250,
    "step": 1,
    "registry_version": "2026-12-01",
    "at": "2026-01-01T00:00:01Z",
}
ROW2 = {
    **ROW1,
    "input_tokens": 0,
    "output_tokens": 0,
    "cache_read_tokens": 0,
    "cache_write_tokens": 50,
    "billed_micros": 1_999,
    "step": 2,
    "at": "2026-01-01T00:00:03Z",
}


async def test_usage_rows_in_billing_order_sum_to_the_jobs_cost(
    stack: tuple[Stack, httpx.AsyncClient],
) -> None:
    s, c = stack
    job_id, _ = await _charged_job(s, c)
    r = await c.get(f"/v1/jobs/{job_id}/usage", headers=s.auth())
    assert r.status_code == 200, r.text
    assert r.json() == {"usage": [ROW1, ROW2]}
    job = (await c.get(f"/v1/jobs/{job_id}", headers=s.auth())).json()
    assert job["status"] == "succeeded"
    assert job["cost_micros"] == 9_249 == sum(row["billed_micros"] for row in r.json()["usage"])


async def test_a_job_not_yet_admitted_has_no_usage(stack: tuple[Stack, httpx.AsyncClient]) -> None:
    s, c = stack
    r = await c.post("/v1/jobs", json={"skill": "echo", "inputs": {}}, headers=s.auth())
    r = await c.get(f"/v1/jobs/{r.json()['id']}/usage", headers=s.auth())
    assert r.status_code == 200, r.text
    assert r.json() == {"usage": []}


async def test_the_events_show_each_cost_with_the_spend_so_far(
    stack: tuple[Stack, httpx.AsyncClient],
) -> None:
    s, c = stack
    job_id, _ = await _charged_job(s, c)
    s.reads.upto = s.seq  # the projection has it all
    events = (await c.get(f"/v1/jobs/{job_id}/events", headers=s.auth())).json()["events"]
    assert [e["type"] for e in events] == ["queued", "started", "cost", "succeeded", "cost"]
    costs = [e["payload"] for e in events if e["type"] == "cost"]
    assert costs == [
        {
            "step": 1,
            "provider": "anthropic",
            "model": "claude/sonnet-4-6",
            "billed_micros": 7_250,
            "spent_micros": 7_250,
        },
        {
            "step": 2,
            "provider": "anthropic",
            "model": "claude/sonnet-4-6",
            "billed_micros": 1_999,
            "spent_micros": 9_249,
        },
    ]
    # The terminal event carries the job as it ended; the charge after it adds later.
    assert events[3]["payload"]["cost_micros"] == 7_250


async def test_a_projection_that_stopped_at_the_end_is_not_the_final_word(
    stack: tuple[Stack, httpx.AsyncClient],
) -> None:
    s, c = stack
    job_id, end = await _charged_job(s, c)
    s.reads.upto = end  # the row is terminal, the charge after the end not applied yet
    job = (await c.get(f"/v1/jobs/{job_id}", headers=s.auth())).json()
    assert (job["status"], job["cost_micros"]) == ("succeeded", 9_249)
    events = (await c.get(f"/v1/jobs/{job_id}/events", headers=s.auth())).json()["events"]
    assert [e["type"] for e in events][-2:] == ["succeeded", "cost"]
    assert events[-1]["payload"]["spent_micros"] == 9_249


def _frames(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.split(b"\n\n"):
        lines = dict(ln.split(": ", 1) for ln in block.decode().splitlines() if ": " in ln)
        if "data" in lines:
            # A data frame's key is its `id:`; the end frame has none.
            out.append((lines.get("id", lines.get("event", "")), json.loads(lines["data"])))
    return out


async def test_the_stream_of_an_ended_job_shows_late_charges_and_ends_with_them(
    stack: tuple[Stack, httpx.AsyncClient],
) -> None:
    s, c = stack
    job_id, _ = await _charged_job(s, c)
    r = await c.get(f"/v1/jobs/{job_id}/stream", headers=s.auth())
    assert r.status_code == 200, r.text
    frames = _frames(r.content)
    assert [(k, f.get("type")) for k, f in frames] == [
        ("1", "queued"),
        ("2", "started"),
        ("3", "cost"),
        ("4", "succeeded"),
        ("5", "cost"),
        ("end", None),
    ]
    assert frames[4][1]["payload"]["spent_micros"] == 9_249
    assert frames[5][1]["cost_micros"] == 9_249
    # Resumed after the terminal event: only the late charge, then the end.
    r = await c.get(f"/v1/jobs/{job_id}/stream", headers={**s.auth(), "last-event-id": "4"})
    assert [(k, f.get("type")) for k, f in _frames(r.content)] == [("5", "cost"), ("end", None)]


@pytest.mark.parametrize("path", ["", "/events", "/usage"])
async def test_another_projects_job_is_a_404_like_every_job_endpoint(
    stack: tuple[Stack, httpx.AsyncClient], path: str
) -> None:
    s, c = stack
    job_id, _ = await _charged_job(s, c)
    s.reads.upto = s.seq
    r = await c.get(f"/v1/jobs/{job_id}{path}", headers=s.auth(OTHER))
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "job_not_found"


@pytest.mark.parametrize("job_id", ["nope", "0a1b2c3d-0000-7000-8000-00000000000z", "a.b.c"])
async def test_an_invalid_or_unknown_id_is_the_same_404_as_a_read(
    stack: tuple[Stack, httpx.AsyncClient], job_id: str
) -> None:
    s, c = stack
    read = await c.get(f"/v1/jobs/{job_id}", headers=s.auth())
    usage = await c.get(f"/v1/jobs/{job_id}/usage", headers=s.auth())
    assert read.status_code == usage.status_code == 404
    assert usage.json() == read.json()


async def test_an_unknown_job_is_a_404(stack: tuple[Stack, httpx.AsyncClient]) -> None:
    s, c = stack
    r = await c.get("/v1/jobs/0a1b2c3d-0000-7000-8000-0000000000ff/usage", headers=s.auth())
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "job_not_found"


async def test_usage_needs_a_key(stack: tuple[Stack, httpx.AsyncClient]) -> None:
    s, c = stack
    job_id, _ = await _charged_job(s, c)
    assert (await c.get(f"/v1/jobs/{job_id}/usage")).status_code == 401
