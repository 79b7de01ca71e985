"""Helpers of the end-to-end tests: start a stack, talk to it as one project."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx

from puras_bundle import pack_project
from puras_cli.devstack import Stack
from puras_cli.devstack.stack import claim_work_dir

PROJECT_DIR = Path(__file__).parent / "e2e" / "project"

E2E_ENV = {
    "PURAS_RUNNER_ACK_WAIT_S": "2",
    "PURAS_RUNNER_MAX_ATTEMPTS": "3",
    "PURAS_RUNNER_SHUTDOWN_GRACE_S": "2",
}


class Api:
    """An HTTP client of the gateway holding one project's key."""

    def __init__(self, base: str, key: str, project_id: str, nats_url: str = "") -> None:
        self.base = base
        self.nats_url = nats_url
        self.key = key
        self.project_id = project_id
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=90
        )

    def submit(self, skill: str, inputs: dict[str, Any], **params: Any) -> httpx.Response:
        return self.http.post("/v1/jobs", json={"skill": skill, "inputs": inputs}, params=params)

    def run(self, skill: str, inputs: dict[str, Any], timeout: int = 60) -> dict[str, Any]:
        """Submit with wait=true and return the JobOut (asserting the call succeeded)."""
        r = self.submit(skill, inputs, wait="true", timeout=timeout)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def events(self, job_id: str) -> list[dict[str, Any]]:
        r = self.http.get(f"/v1/jobs/{job_id}/events")
        assert r.status_code == 200, r.text
        return r.json()["events"]  # type: ignore[no-any-return]

    def wait_terminal(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """Follow the job's SSE stream until its end frame (no polling)."""
        with self.http.stream("GET", f"/v1/jobs/{job_id}/stream", timeout=timeout) as r:
            assert r.status_code == 200
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "end":
                    return json.loads(line[6:])  # type: ignore[no-any-return]
        raise AssertionError("stream ended without an end frame")

    def wait_for_event(self, job_id: str, type_: str, timeout: float = 60) -> dict[str, Any]:
        """Follow the job's SSE stream until an event of ``type_`` arrives."""
        with self.http.stream("GET", f"/v1/jobs/{job_id}/stream", timeout=timeout) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: "):
                    frame = json.loads(line[6:])
                    if frame.get("type") == type_:
                        return frame  # type: ignore[no-any-return]
        raise AssertionError(f"no {type_} event")

    def push(self, project_dir: Path = PROJECT_DIR, **data: str) -> httpx.Response:
        return self.http.post(
            "/v1/deployments",
            files={"bundle": ("bundle.zip", pack_project(project_dir).data, "application/zip")},
            data=data,
        )

    def close(self) -> None:
        self.http.close()


def start_stack(env: dict[str, str] | None = None, runners: int = 1) -> tuple[Stack, Path]:
    work = Path(tempfile.mkdtemp(prefix="puras-e2e-"))
    stack = Stack(work, env={**E2E_ENV, **(env or {})}, runners=runners, fsync=False)
    try:
        stack.start()
    except BaseException:
        stack.stop()
        shutil.rmtree(work, ignore_errors=True)
        raise
    return stack, work


def stop_stack(stack: Stack, work: Path) -> None:
    stack.stop()
    for pids in work.rglob("stack.pids"):
        claim_work_dir(pids.parent)
    shutil.rmtree(work, ignore_errors=True)


def new_api(stack: Stack, name: str, usd: int = 10) -> Api:
    project = stack.bootstrap_project(name=name[:100], usd=usd)
    return Api(stack.api_base, project.api_key, project.project_id, stack.nats_url)


def bill_media_call(nats_url: str, project_id: str, job_id: str, inputs: dict[str, Any]) -> None:
    """Record one ``openai/gpt-image-2`` generation for the job, as the media endpoint
    does, and return once billing charged it (its ``job.cost`` is on the job's subject).
    Calls ``asyncio.run``: from a Playwright test, go through ``dash.off_loop``."""
    import asyncio

    from puras_common.bus import connect
    from puras_common.events.base import decode_envelope
    from puras_common.events.ids import job_media_usage_id
    from puras_common.events.subjects import AGG_JOB, event_subject
    from puras_common.events.types import MediaUsageRecorded

    async def record() -> None:
        bus = await connect(nats_url, name="media-endpoint")
        charged = asyncio.Event()

        async def on_event(msg: Any) -> None:
            if decode_envelope(msg.data).type == "job.cost":
                charged.set()

        sub = await bus.nc.subscribe(event_subject(project_id, AGG_JOB, job_id), cb=on_event)
        try:
            await bus.append(
                MediaUsageRecorded(
                    call=1,
                    provider="fal",
                    model="openai/gpt-image-2",
                    inputs=inputs,
                    outputs={"num_outputs": int(inputs.get("num_images", 1))},
                    skill="echo",
                ),
                project_id=project_id,
                aggregate=AGG_JOB,
                aggregate_id=job_id,
                event_id=job_media_usage_id(job_id, 1),
            )
            await asyncio.wait_for(charged.wait(), 60)
        finally:
            await sub.unsubscribe()
            await bus.close()

    asyncio.run(record())
