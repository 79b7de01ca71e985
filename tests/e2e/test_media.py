"""Media generation end to end (S2, B1, D7): a skill's ``media.run`` goes from the job's
sandbox, through the runner's egress proxy, to ``POST /v1/media/generate`` with the job's
token; the gateway hands it to the runner running the job, which calls a scripted fake of
the upstream media API, saves the output in the project's drive, and records the usage
that billing charges to the job."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_media_upstream import FakeMediaUpstream, Script
from stack_fixtures import serve_stack

from puras_cli.devstack import Stack
from puras_common.bus import connect
from puras_common.events.base import decode_envelope
from puras_common.events.subjects import AGG_JOB, event_subject
from stackapi import Api, new_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PROJECT = Path(__file__).parent / "media_project"
KEY = "fake-media-key"
FORGED = (
    "pjt_eyJwcm9qZWN0X2lkIjoicCIsImpvYl9pZCI6ImoiLCJhdHRlbXB0IjoxLCJydW5uZXIiOiJyIiwiZXhwIjo5"
    "OTk5OTk5OTk5fQ.AAAA"
)
"""Well-formed claims for runner ``r``, signed by nobody."""


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeMediaUpstream]:
    with FakeMediaUpstream.running(key=KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def stack(upstream: FakeMediaUpstream) -> Iterator[Stack]:
    yield from serve_stack(
        {
            "PURAS_RUNNER_MEDIA_UPSTREAM_URL": upstream.base_url,
            "PURAS_RUNNER_MEDIA_UPSTREAM_KEY": KEY,
            # The fake serves its outputs on loopback; real outputs are on public CDNs.
            "PURAS_RUNNER_EGRESS_ALLOW_NETWORKS": '["127.0.0.0/8"]',
        }
    )


@pytest.fixture
def api(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Api]:
    a = new_api(stack, request.node.name)
    r = a.push(PROJECT, notes="media")
    assert r.status_code == 200, r.text
    try:
        yield a
    finally:
        a.close()


def _run(api: Api, inputs: dict[str, Any]) -> dict[str, Any]:
    skill = "paint" if inputs.get("model") != "-" else "scribble"
    inputs = {k: v for k, v in inputs.items() if skill == "paint" or k != "model"}
    r = api.submit(skill, inputs, wait="true", timeout="60")
    assert r.status_code == 200, r.text
    job: dict[str, Any] = r.json()
    assert job["status"] == "succeeded", job
    return job


def test_media_run_saves_the_output_in_the_drive_and_bills_the_job(
    stack: Stack, api: Api, upstream: FakeMediaUpstream
) -> None:
    upstream.reset()
    job = _run(
        api,
        {
            "model": "openai/gpt-image-2",
            "inputs": {"prompt": "a red bicycle", "quality": "low", "size": "1024x1024"},
        },
    )
    made = job["result"]["made"]
    assert set(made) == {
        "model",
        "kind",
        "drive_path",
        "output_url",
        "request_id",
        "billed_micros",
        "billed_usd",
        "meta",
    }
    assert made["model"] == "openai/gpt-image-2"
    assert made["kind"] == "image"
    assert made["drive_path"].startswith("media/")
    assert made["drive_path"].endswith(".png")
    assert job["result"]["saved_bytes"] > 0
    # low x 1024x1024 is $0.0072 per image, margin included.
    assert made["billed_micros"] == 7200
    assert made["billed_usd"] == pytest.approx(0.0072)
    submit = upstream.submits()[0]
    assert submit.path == "/fal-ai/gpt-image-2/text-to-image"
    assert submit.headers["authorization"] == f"Key {KEY}"
    assert submit.body["prompt"] == "a red bicycle"
    # The signed output URL serves the file (no key: the URL is the proof).
    got = httpx.get(made["output_url"], timeout=10)
    assert got.status_code == 200
    assert got.content[:8] == b"\x89PNG\r\n\x1a\n"
    # The drive says which job made it (D7).
    origin = api.http.get("/v1/drive/origin", params={"path": made["drive_path"]})
    assert origin.status_code == 200, origin.text
    assert origin.json()["job_id"] == job["id"]
    assert origin.json()["tool"] == "media"
    assert origin.json()["skill_name"] == "paint"
    # Billed to the job (J8) at the same price.
    assert _costs(stack, api, job["id"]) == [7200]
    rows = api.http.get(f"/v1/jobs/{job['id']}/usage").json()["usage"]
    assert [(r["model"], r["billed_micros"]) for r in rows] == [("openai/gpt-image-2", 7200)]


def _costs(stack: Stack, api: Api, job_id: str) -> list[int]:
    """The job's ``cost`` events, once billing has charged its media call."""

    async def wait() -> None:
        bus = await connect(stack.nats_url, name="media-e2e")
        charged = asyncio.Event()

        async def on_event(msg: Any) -> None:
            if decode_envelope(msg.data).type == "job.cost":
                charged.set()

        sub = await bus.nc.subscribe(event_subject(api.project_id, AGG_JOB, job_id), cb=on_event)
        try:
            if not any(e["type"] == "cost" for e in api.events(job_id)):
                await asyncio.wait_for(charged.wait(), 60)
        finally:
            await sub.unsubscribe()
            await bus.close()

    asyncio.run(wait())
    return [e["payload"]["billed_micros"] for e in api.events(job_id) if e["type"] == "cost"]


def test_an_unknown_slug_is_a_400_and_nothing_is_called(
    api: Api, upstream: FakeMediaUpstream
) -> None:
    upstream.reset()
    job = _run(api, {"model": "nobody/no-such-model", "inputs": {"prompt": "x"}})
    assert job["result"]["status"] == 400
    assert "unknown media model" in job["result"]["error"]
    assert upstream.submits() == []


def test_the_upstream_refusing_the_inputs_is_reported_and_not_billed(
    api: Api, upstream: FakeMediaUpstream
) -> None:
    upstream.reset()
    upstream.script(
        "fal-ai/bytedance/seedream/v4/text-to-image",
        Script(
            submit_status=422, submit_detail=[{"loc": ["body", "prompt"], "msg": "field required"}]
        ),
    )
    job = _run(api, {"model": "bytedance/seedream-v4", "inputs": {}})
    assert job["result"]["status"] == 422
    assert "prompt" in job["result"]["error"]
    assert api.http.get(f"/v1/jobs/{job['id']}/usage").json()["usage"] == []


def test_media_generate_refuses_keys_and_forged_tokens(stack: Stack, api: Api) -> None:
    body = {"model": "openai/gpt-image-2", "inputs": {"prompt": "x"}}
    with httpx.Client(base_url=stack.api_base, timeout=10) as http:
        no_auth = http.post("/v1/media/generate", json=body)
        assert no_auth.status_code == 401
        with_key = http.post(
            "/v1/media/generate", json=body, headers={"Authorization": f"Bearer {api.key}"}
        )
        assert with_key.status_code == 401
        assert "not a job token" in with_key.text
        forged = http.post(
            "/v1/media/generate",
            json=body,
            headers={"Authorization": f"Bearer {FORGED}"},
        )
        assert forged.status_code == 401


# -- what a job writes in its drive (D7, D8) ---------------------------------------------


def _listing(api: Api, prefix: str) -> dict[str, Any]:
    r = api.http.get("/v1/drive/list", params={"prefix": prefix})
    assert r.status_code == 200, r.text
    listing: dict[str, Any] = r.json()
    return listing


def test_files_a_job_writes_are_listed_with_their_origin_once_it_succeeded(api: Api) -> None:
    job = _run(api, {"model": "-", "write": {"notes/a.txt": "hello", "notes/deep/b.txt": "x"}})
    listing = _listing(api, "notes/")
    assert [f["path"] for f in listing["files"]] == ["notes/a.txt"]
    assert [f["path"] for f in listing["folders"]] == ["notes/deep/"]
    assert listing["files"][0]["bytes"] == 5
    origin = api.http.get("/v1/drive/origin", params={"path": "notes/a.txt"}).json()
    assert origin["job_id"] == job["id"]
    assert origin["skill_name"] == "scribble"
    assert origin["tool"] is None  # the skill's own code
    # Another job reads it back, and a third deletes it: gone from the listing too.
    assert _run(api, {"model": "-", "read": "notes/a.txt"})["result"]["read"] == "hello"
    _run(api, {"model": "-", "delete": ["notes/a.txt"]})
    assert [f["path"] for f in _listing(api, "notes/")["files"]] == []


def test_a_file_uploaded_through_the_api_is_read_by_a_job(api: Api) -> None:
    # A job first: the project's drive folder is then its jobs' uid's, and what the
    # drive service writes later must still be theirs to read, change and delete.
    _run(api, {"model": "-", "write": {"first.txt": "1"}})
    up = api.http.post(
        "/v1/drive/upload",
        files={"file": ("in.txt", b"from the app", "text/plain")},
        data={"path": "inbox/"},
    )
    assert up.status_code == 200, up.text
    assert up.json()["drive_path"] == "inbox/in.txt"
    assert _run(api, {"model": "-", "read": "inbox/in.txt"})["result"]["read"] == "from the app"
    _run(api, {"model": "-", "delete": ["inbox/in.txt"], "write": {"inbox/new.txt": "2"}})
    assert [f["path"] for f in _listing(api, "inbox/")["files"]] == ["inbox/new.txt"]


def test_a_jobs_token_opens_nothing_once_the_job_is_over(stack: Stack, api: Api) -> None:
    job = _run(api, {"model": "-", "token": True})
    token = job["result"]["token"]
    assert token.startswith("pjt_")
    assert job["result"]["api_url"] == stack.api_base
    # The job printed it: its log has it masked, like a secret.
    logs = [e for e in api.events(job["id"]) if e["type"] == "log"]
    assert "my token is" in str(logs)
    assert token not in str(logs)
    r = httpx.post(
        f"{stack.api_base}/v1/media/generate",
        json={"model": "openai/gpt-image-2", "inputs": {"prompt": "x"}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 401
    assert "not running any more" in r.json()["error"]["message"]
