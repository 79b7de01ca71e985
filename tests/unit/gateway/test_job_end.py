"""A job's end as the API shows it: the job folded from its facts (J2, J5)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from gateway_fakes import T0, FakeCommands, FakeJobLog, job_reads_gateway

from puras_common.events import AnyEvent, Envelope, JobLogged, JobStarted, JobSucceeded
from puras_gateway.app.auth import Principal
from puras_gateway.bootstrap import App
from puras_gateway.domain.job_events import JobEvent
from puras_gateway.domain.requests import parse_submit_body, parse_submit_mode

T1 = T0 + timedelta(seconds=1)
T2 = T0 + timedelta(seconds=2)
P = "0a1b2c3d-0000-7000-8000-000000000001"
WHO = Principal(project_id=P, key_prefix="k")


def _gateway(queue: FakeCommands, log: FakeJobLog) -> App:
    return job_reads_gateway(P, queue, log)


def _append(log: FakeJobLog, job_id: str, ev: AnyEvent, event_id: str, seq: int) -> None:
    events = log.jobs[(P, job_id)]
    env = Envelope(
        id=event_id, type=ev.type, v=ev.version, at=T2, project_id=P, aggregate_id=job_id
    )
    events.append(JobEvent(idx=len(events) + 1, envelope=env, event=ev, seq=seq))


async def _ended_job() -> tuple[App, str]:
    queue, log = FakeCommands(), FakeJobLog()
    gw = _gateway(queue, log)
    body = parse_submit_body(b'{"skill": "echo", "inputs": {"text": "hi"}}')
    submitted = await gw.jobs.submit(WHO, body, parse_submit_mode(None, None, None, 30))
    assert isinstance(submitted, dict)
    job_id = submitted["id"]
    log.admit(queue.take(P, job_id), T0)
    started = JobStarted(attempt=1, deployment_id="d1", runner_id="r", started_at=T1)
    _append(log, job_id, started, f"{job_id}:started:1", 100)
    _append(log, job_id, JobLogged(stream="stdout", lines=["hi"]), f"{job_id}:log:1:1", 101)
    done = JobSucceeded(result={"echoed": "hi"}, attempt=1, started_at=T1, finished_at=T2)
    _append(log, job_id, done, f"{job_id}:terminal", 102)
    return gw, job_id


def _final(job_id: str) -> dict[str, Any]:
    return {
        "id": job_id,
        "project_id": P,
        "skill": "echo",
        "status": "succeeded",
        "inputs": {"text": "hi"},
        "result": {"echoed": "hi"},
        "error": None,
        "cost_micros": 0,
        "deployment_id": "d1",
        "attempts": 1,
        "created_at": "2026-01-01T00:00:00Z",
        "started_at": "2026-01-01T00:00:01Z",
        "finished_at": "2026-01-01T00:00:02Z",
        "held_reason": None,
    }


async def test_a_read_and_the_events_show_the_folded_end() -> None:
    gw, job_id = await _ended_job()
    assert await gw.jobs.get(WHO, job_id) == _final(job_id)
    events = (await gw.jobs.events(WHO, job_id))["events"]
    assert [e["type"] for e in events] == ["queued", "started", "log", "succeeded"]
    assert json.loads(json.dumps(events[-1]["payload"], default=str)) == _final(job_id)


async def test_the_stream_of_an_ended_job_ends_with_the_folded_job() -> None:
    gw, job_id = await _ended_job()
    frames = [f async for f in await gw.jobs.attach(WHO, job_id, after=2)]
    # Only the events after Last-Event-ID 2, then the end frame.
    assert [f.split(b"\n", 2)[:2] for f in frames[:2]] == [
        [b"event: log", b"id: 3"],
        [b"event: succeeded", b"id: 4"],
    ]
    assert frames[2].startswith(b"event: end\ndata: ")
    terminal = json.loads(frames[1].split(b"data: ", 1)[1])
    end = json.loads(frames[2].split(b"data: ", 1)[1])
    assert terminal["payload"] == end == _final(job_id)
