"""Jobs through the whole stack: J1-J5, R1, R3, K3 (SPEC §3, §5)."""

from __future__ import annotations

import json

import pytest

from stackapi import Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

JOBOUT_FIELDS = {
    "id", "project_id", "skill", "status", "inputs", "result", "error", "cost_micros",
    "deployment_id", "attempts", "created_at", "started_at", "finished_at",
    "held_reason",  # Z8
}  # fmt: skip


def test_sync_echo_returns_the_terminal_jobout(api: Api) -> None:
    job = api.run("echo", {"text": "hi"})
    assert set(job) == JOBOUT_FIELDS
    assert job["status"] == "succeeded"
    assert job["result"] == {"echoed": "hi"}
    assert job["error"] is None
    assert job["attempts"] == 1
    assert job["cost_micros"] == 0
    assert job["project_id"] == api.project_id
    assert job["started_at"] is not None
    assert job["finished_at"] is not None
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]


def test_async_submit_is_queued_and_readable_at_once(api: Api) -> None:
    r = api.submit("echo", {"text": "later"})
    assert r.status_code == 200
    job = r.json()
    assert set(job) == JOBOUT_FIELDS
    assert job["status"] == "queued"
    # J4: a read right after submit finds the job, never a 404.
    got = api.http.get(f"/v1/jobs/{job['id']}")
    assert got.status_code == 200, got.text
    assert got.json()["id"] == job["id"]
    final = api.wait_terminal(job["id"])
    assert final["status"] == "succeeded"
    assert final["result"] == {"echoed": "later"}
    assert api.http.get(f"/v1/jobs/{job['id']}").json()["status"] in ("running", "succeeded")


def test_body_without_content_type_is_parsed_as_json(api: Api) -> None:
    r = api.http.post(
        "/v1/jobs?wait=true",
        content=b'{"skill":"echo","inputs":{"text":"curl -d"}}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"echoed": "curl -d"}


def test_events_are_ordered_and_end_with_the_final_jobout(api: Api) -> None:
    job = api.run("boom", {"n": 7})
    events = api.events(job["id"])
    types = [e["type"] for e in events]
    assert types[0] == "queued"
    assert types[1] == "started"
    assert types[-1] == "failed"
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[1]["payload"]["attempt"] == 1
    logs = [line for e in events if e["type"] == "log" for line in e["payload"]["lines"]]
    assert "about to fail" in logs
    assert events[-1]["payload"]["status"] == "failed"
    assert events[-1]["payload"]["id"] == job["id"]
    assert all({"id", "type", "payload", "at"} <= set(e) for e in events)


def test_exception_fails_the_job_with_type_message_and_traceback(api: Api) -> None:
    job = api.run("boom", {"n": 7})
    assert job["status"] == "failed"
    assert job["result"] is None
    assert job["error"].startswith("ValueError: boom: bad input 7")
    assert "Traceback" in job["error"]
    assert "helper" in job["error"]
    assert job["attempts"] == 1  # its own failure is never retried (J11)


def test_output_schema_violation_fails_the_job(api: Api) -> None:
    job = api.run("badout", {})
    assert job["status"] == "failed"
    assert "output_schema" in job["error"]
    assert "echoed" in job["error"]


def test_wall_clock_limit_ends_a_runaway_job(api: Api) -> None:
    job = api.run("stuck", {})
    assert job["status"] == "failed"
    assert "timed out" in job["error"]
    assert "1" in job["error"]


def test_wait_timeout_returns_the_current_row(api: Api) -> None:
    r = api.submit("nap", {"seconds": 3}, wait="true", timeout=1)
    assert r.status_code == 200
    job = r.json()
    assert job["status"] in ("queued", "running")
    assert api.wait_terminal(job["id"])["status"] == "succeeded"


def test_stream_on_submit_sends_every_event_then_an_end_frame(api: Api) -> None:
    frames: list[tuple[str | None, str | None, dict[str, object]]] = []
    with api.http.stream(
        "POST", "/v1/jobs?stream=true", json={"skill": "echo", "inputs": {"text": "sse"}}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        header_id = r.headers["puras-job-id"]
        sse_id = event = None
        for line in r.iter_lines():
            if line.startswith("id: "):
                sse_id = line[4:]
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                frames.append((event, sse_id, json.loads(line[6:])))
                sse_id = event = None
    data = [f for f in frames if f[0] != "end"]
    kinds = [f[2].get("type") for f in data]
    assert kinds[0] == "queued"
    assert kinds[-1] == "succeeded"
    # Z6: every data frame names its type in `event:` and carries `id:`; the job's id
    # comes in the header and in the first frame (in every one, in fact).
    assert all(f[0] == f[2]["type"] for f in data)
    assert all(f[1] == str(f[2]["id"]) for f in data)
    assert data[0][2]["job_id"] == header_id
    assert {f[2]["job_id"] for f in data} == {header_id}
    end = frames[-1]
    assert end[0] == "end"
    assert end[1] is None
    assert end[2]["status"] == "succeeded"
    assert end[2]["result"] == {"echoed": "sse"}
    assert end[2]["id"] == header_id


def test_a_dropped_submit_stream_is_resumed_from_its_header_and_last_id(api: Api) -> None:
    # A client that drops after the first frame knows the job (header) and where it was
    # (`id:`): the re-attach delivers the rest with nothing lost or repeated.
    with api.http.stream(
        "POST", "/v1/jobs?stream=true", json={"skill": "echo", "inputs": {"text": "drop"}}
    ) as r:
        job_id = r.headers["puras-job-id"]
        first: dict[str, object] | None = None
        for line in r.iter_lines():
            if line.startswith("data: "):
                first = json.loads(line[6:])
                break
    assert first is not None
    assert first["type"] == "queued"
    with api.http.stream(
        "GET", f"/v1/jobs/{job_id}/stream", headers={"Last-Event-ID": str(first["id"])}
    ) as r:
        rest = [
            json.loads(line[6:])
            for line in r.iter_lines()
            if line.startswith("data: ") and '"type"' in line
        ]
    all_events = api.events(job_id)
    assert [first["id"]] + [f["id"] for f in rest] == [e["id"] for e in all_events]
    assert rest[-1]["type"] == "succeeded"


def test_stream_reattach_resumes_after_last_event_id(api: Api) -> None:
    job = api.run("boom", {})
    all_events = api.events(job["id"])
    with api.http.stream(
        "GET", f"/v1/jobs/{job['id']}/stream", headers={"Last-Event-ID": "2"}
    ) as r:
        ids = [
            json.loads(line[6:])["id"]
            for line in r.iter_lines()
            if line.startswith("data: ") and '"type"' in line
        ]
    assert ids == [e["id"] for e in all_events if e["id"] > 2]


def test_list_is_newest_first_filters_by_status_and_pages(api: Api) -> None:
    ids = [api.run("echo", {"text": str(i)})["id"] for i in range(3)]
    failed = api.run("boom", {})["id"]
    listed = api.http.get("/v1/jobs").json()
    assert set(listed) == {"jobs", "next_cursor"}
    order = [j["id"] for j in listed["jobs"]]
    assert order[:4] == [failed, *reversed(ids)]
    only_failed = api.http.get("/v1/jobs", params={"status": "failed"}).json()["jobs"]
    assert [j["id"] for j in only_failed] == [failed]
    page1 = api.http.get("/v1/jobs", params={"limit": 2}).json()
    assert len(page1["jobs"]) == 2
    assert page1["next_cursor"]
    page2 = api.http.get("/v1/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    assert [j["id"] for j in page1["jobs"] + page2["jobs"]] == order[:4]
    assert page2["next_cursor"] is None


def test_list_filters_by_skill_with_status_and_refuses_a_bad_name(api: Api) -> None:
    echo = api.run("echo", {"text": "one"})["id"]
    failed = api.run("boom", {})["id"]
    only_echo = api.http.get("/v1/jobs", params={"skill": "echo"}).json()["jobs"]
    assert [j["id"] for j in only_echo] == [echo]
    only_boom = api.http.get("/v1/jobs", params={"skill": "boom", "status": "failed"}).json()
    assert [j["id"] for j in only_boom["jobs"]] == [failed]
    none = api.http.get("/v1/jobs", params={"skill": "echo", "status": "failed"}).json()
    assert none == {"jobs": [], "next_cursor": None}
    bad = api.http.get("/v1/jobs", params={"skill": "Not A Skill"})
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_query"
    assert "`skill`" in bad.json()["error"]["message"]


def test_a_callers_trace_context_rides_along_to_every_event(api: Api) -> None:
    import asyncio

    from puras_common.bus import connect
    from puras_common.events.subjects import EVENTS_STREAM

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = api.http.post(
        "/v1/jobs?wait=true",
        json={"skill": "echo", "inputs": {"text": "traced"}},
        headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    job = r.json()
    assert job["status"] == "succeeded"

    async def headers_of_job_events() -> list[dict[str, str]]:
        bus = await connect(api.nats_url, name="trace-check")
        try:
            subject = f"ev.{api.project_id}.job.{job['id']}"
            out: list[dict[str, str]] = []
            seq = 1
            while True:
                try:
                    msg = await bus.js.get_msg(EVENTS_STREAM, seq=seq, subject=subject, next=True)
                except Exception:
                    return out
                out.append(dict(msg.headers or {}))
                seq = int(msg.seq or 0) + 1
        finally:
            await bus.close()

    headers = asyncio.run(headers_of_job_events())
    assert len(headers) >= 3  # queued (scheduler), started and succeeded (runner)
    for h in headers:
        assert trace_id in h.get("traceparent", ""), h


def test_an_agentic_job_without_a_model_provider_fails_saying_what_to_set(
    api: Api, tmp_path: object
) -> None:
    from pathlib import Path

    from stackapi import PROJECT_DIR

    project = Path(str(tmp_path)) / "p"
    import shutil

    shutil.copytree(PROJECT_DIR, project)
    (project / "skills/hello").mkdir()
    (project / "skills/hello/skill.yaml").write_text("description: hi\nentrypoint: SKILL.md\n")
    (project / "skills/hello/SKILL.md").write_text("You are helpful.\n")
    assert api.push(project).status_code == 200
    job = api.run("hello", {"prompt": "hi"})
    assert job["status"] == "failed"
    # This stack has no provider configured: the first model call says what to set.
    assert "no API key is configured for model claude/sonnet-4-6" in job["error"]
    assert "ANTHROPIC_API_KEY" in job["error"]
