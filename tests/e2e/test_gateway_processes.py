"""The gateway as several processes: its projector apart, two HTTP workers on one port.

The projections are written by ``puras-gateway-projector`` (the HTTP gateway runs none),
so what a client reads right after a sync submit, and a list after a job ended, hold
across processes (the checkpoint watcher). Two workers share the gateway's port: every
new connection may reach either, so a key, a deployment or a revocation must show on
the next request whichever worker takes it; a worker that dies is started again.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from puras_cli.devstack import Stack
from puras_cli.devstack.stack import claim_work_dir
from stackapi import E2E_ENV, Api, new_api

WORKERS = 2


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="puras-e2e-"))
    s = Stack(work, env=E2E_ENV, fsync=False, gateway_workers=WORKERS)
    try:
        s.start()
        yield s
    finally:
        s.stop()
        for pids in work.rglob("stack.pids"):
            claim_work_dir(pids.parent)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def api(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Api]:
    a = new_api(stack, request.node.name)
    r = a.push(notes="e2e")
    assert r.status_code == 200, r.text
    try:
        yield a
    finally:
        a.close()


def _workers(stack: Stack) -> list[int]:
    out = subprocess.run(
        ["pgrep", "-P", str(stack.service_pids()["gateway"])],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return sorted(int(p) for p in out.split())


def _fresh(stack: Stack, key: str) -> httpx.Client:
    """A client whose every request opens a new connection (any worker may accept it)."""
    return httpx.Client(
        base_url=stack.api_base,
        headers={"Authorization": f"Bearer {key}", "Connection": "close"},
        timeout=60,
    )


def test_the_projector_runs_apart_and_reads_after_a_sync_submit_hold(
    stack: Stack, api: Api
) -> None:
    assert "projector" in stack.service_pids()
    assert stack._services["gateway"].env["PURAS_GATEWAY_RUN_PROJECTORS"] == "false"
    for i in range(5):
        job = api.run("echo", {"text": f"r{i}"})
        assert job["status"] == "succeeded"
        # Right after the answer, on new connections: the job as it ended, and listed.
        with _fresh(stack, api.key) as c:
            got = c.get(f"/v1/jobs/{job['id']}")
            assert got.status_code == 200, got.text
            assert got.json()["status"] == "succeeded"
            listed = c.get("/v1/jobs", params={"status": "succeeded", "limit": 50})
            assert job["id"] in [j["id"] for j in listed.json()["jobs"]]


def test_a_restarted_projector_catches_up_and_lists_what_ended_meanwhile(
    stack: Stack, api: Api
) -> None:
    stack.kill_service("projector", signal.SIGKILL)
    job = api.run("echo", {"text": "while away"})
    assert job["status"] == "succeeded"
    # Read through the log while the projection trails it.
    assert api.http.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"
    stack.start_service("projector")
    listed = api.http.get("/v1/jobs", params={"status": "succeeded", "limit": 50})
    assert job["id"] in [j["id"] for j in listed.json()["jobs"]]


def test_two_workers_share_the_port_and_a_write_shows_on_every_worker(
    stack: Stack, admin: httpx.Client, api: Api
) -> None:
    assert len(_workers(stack)) == WORKERS
    for _ in range(10):
        created = admin.post(f"/v1/admin/projects/{api.project_id}/keys")
        assert created.status_code in (200, 201), created.text
        key = created.json()["key"]
        with _fresh(stack, key) as c:
            for _ in range(2 * WORKERS):
                r = c.get("/v1/jobs", params={"limit": 1})
                assert r.status_code == 200, r.text
        prefix = created.json()["prefix"]
        revoked = admin.delete(f"/v1/admin/projects/{api.project_id}/keys/{prefix}")
        assert revoked.status_code in (200, 204), revoked.text
        with _fresh(stack, key) as c:
            for _ in range(2 * WORKERS):
                assert c.get("/v1/jobs", params={"limit": 1}).status_code == 401


def test_a_pushed_deployment_serves_the_next_submit_on_any_worker(stack: Stack, api: Api) -> None:
    for _ in range(3):
        pushed = api.push(notes="again")
        assert pushed.status_code == 200, pushed.text
        with _fresh(stack, api.key) as c:
            for i in range(WORKERS):
                r = c.post("/v1/jobs", json={"skill": "echo", "inputs": {"text": f"{i}"}})
                assert r.status_code in (200, 202), r.text
                job = c.get(f"/v1/jobs/{r.json()['id']}").json()
                assert job["deployment_id"] == pushed.json()["id"], job


def test_a_killed_worker_is_started_again_and_jobs_keep_running(stack: Stack, api: Api) -> None:
    before = _workers(stack)
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = _workers(stack)
        if len(now) == WORKERS and before[0] not in now:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the worker was not started again: {before} -> {_workers(stack)}")
    with _fresh(stack, api.key) as c:
        for i in range(2 * WORKERS):
            r = c.post(
                "/v1/jobs",
                json={"skill": "echo", "inputs": {"text": f"after {i}"}},
                params={"wait": "true", "timeout": 60},
            )
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "succeeded"


def test_workers_end_with_a_supervisor_killed_outright(stack: Stack, api: Api) -> None:
    # SIGKILL runs no handler in the supervisor: the kernel's parent-death signal is
    # what stops its workers, instead of leaving them serving on the inherited port.
    workers = _workers(stack)
    assert len(workers) == WORKERS
    fds = [os.pidfd_open(pid) for pid in workers]
    try:
        os.kill(stack.service_pids()["gateway"], signal.SIGKILL)
        for fd in fds:
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, f"a worker outlived its supervisor: {workers}"
    finally:
        for fd in fds:
            os.close(fd)
    stack.start_service("gateway")
    assert api.run("echo", {"text": "back"})["status"] == "succeeded"
