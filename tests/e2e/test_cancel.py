"""Cancelling jobs (J6)."""

from __future__ import annotations

import httpx
import pytest

from puras_cli.devstack import Stack
from stackapi import PROJECT_DIR, Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_cancelling_a_running_job_terminates_its_process(api: Api) -> None:
    job = api.submit("nap", {"seconds": 30}).json()
    api.wait_for_event(job["id"], "started")
    r = api.http.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "cancelled"
    assert out["finished_at"] is not None
    final = api.wait_terminal(job["id"])
    assert final["status"] == "cancelled"
    types = [e["type"] for e in api.events(job["id"])]
    assert types[-1] == "cancelled"
    assert "succeeded" not in types
    # Cancelling again is a no-op that returns the same job.
    again = api.http.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"


def test_a_finished_job_cannot_be_cancelled(api: Api) -> None:
    job = api.run("echo", {"text": "done"})
    r = api.http.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 409
    assert "succeeded" in r.json()["error"]["message"]
    failed = api.run("boom", {})
    r = api.http.post(f"/v1/jobs/{failed['id']}/cancel")
    assert r.status_code == 409
    assert "failed" in r.json()["error"]["message"]


def test_a_queued_job_is_cancelled_at_once_and_never_runs(
    stack: Stack, admin: httpx.Client
) -> None:
    pid = admin.post("/v1/admin/projects", json={"name": "no-credit"}).json()["id"]
    key = admin.post(f"/v1/admin/projects/{pid}/keys").json()["key"]
    api = Api(stack.api_base, key, pid)
    try:
        assert api.push(PROJECT_DIR).status_code == 200
        job = api.submit("echo", {"text": "never"}).json()  # held: no credit
        r = api.http.post(f"/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200
        assert r.json()["status"] == "cancelled"
        assert r.json()["started_at"] is None
        # Credit arrives: the cancelled job must not be released or run.
        admin.post(f"/v1/admin/projects/{pid}/credits", json={"usd": 1})
        later = api.run("echo", {"text": "after"})
        assert later["status"] == "succeeded"
        types = [e["type"] for e in api.events(job["id"])]
        assert "started" not in types
        assert api.http.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
    finally:
        api.close()


def test_cancel_of_an_unknown_job_is_404(api: Api) -> None:
    r = api.http.post("/v1/jobs/00000000-0000-7000-8000-000000000000/cancel")
    assert r.status_code == 404
