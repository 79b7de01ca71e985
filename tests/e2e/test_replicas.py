"""Two gateways and two schedulers on one stack: no replica remembers anything alone.

A job submitted on gateway A is found on gateway B at once (J4), before and after the
scheduler admitted it, also by a gateway that restarted in between; B can wait on it,
stream it and cancel it; with both schedulers pulling commands every job completes, and
each scheduler alone is enough.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from puras_cli.devstack import Stack
from stackapi import Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.fixture(scope="module")
def replicas(stack: Stack) -> tuple[str, str]:
    """The second gateway and scheduler of the module's stack (names)."""
    return stack.add_replica("gateway"), stack.add_replica("scheduler")


@pytest.fixture
def on_b(api: Api, stack: Stack, replicas: tuple[str, str]) -> Iterator[Api]:
    """The test's project, through gateway B."""
    b = Api(stack.api_base_of(replicas[0]), api.key, api.project_id)
    try:
        yield b
    finally:
        b.close()


def test_a_job_submitted_on_a_is_found_on_b_at_once(api: Api, on_b: Api) -> None:
    ids = []
    for i in range(20):
        r = api.submit("echo", {"text": f"n{i}"})
        assert r.status_code == 200, r.text
        job = r.json()
        ids.append(job["id"])
        # Right after the submit: never a 404, whether or not it was admitted yet.
        got = on_b.http.get(f"/v1/jobs/{job['id']}")
        assert got.status_code == 200, got.text
        assert got.json()["id"] == job["id"]
        assert got.json()["deployment_id"] == job["deployment_id"]
        assert on_b.http.get(f"/v1/jobs/{job['id']}/events").status_code == 200
    for job_id in ids:
        assert on_b.wait_terminal(job_id)["status"] == "succeeded"
    # A job id nobody submitted is still a 404, at once.
    missing = on_b.http.get("/v1/jobs/0a1b2c3d-0000-7000-8000-00000000dead")
    assert missing.status_code == 404


def test_b_waits_on_and_cancels_jobs_of_a(api: Api, on_b: Api) -> None:
    done = on_b.run("echo", {"text": "on b"})
    assert done["status"] == "succeeded"
    job = api.submit("nap", {"seconds": 30}).json()
    # Cancelled on the other gateway right after the submit (admitted or not yet).
    r = on_b.http.post(f"/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200, r.text
    assert api.wait_terminal(job["id"])["status"] == "cancelled"
    assert on_b.http.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"


def test_an_accepted_job_not_yet_admitted_is_queued_everywhere(
    api: Api, on_b: Api, stack: Stack, replicas: tuple[str, str]
) -> None:
    schedulers = ["scheduler", replicas[1]]
    for name in schedulers:
        stack.kill_service(name, signal.SIGTERM)
    try:
        job = api.submit("echo", {"text": "later"}).json()
        assert job["status"] == "queued"
        # No scheduler: the job is only a command in the queue, and B knows it.
        got = on_b.http.get(f"/v1/jobs/{job['id']}")
        assert got.status_code == 200, got.text
        assert got.json()["status"] == "queued"
        assert got.json()["created_at"] == job["created_at"]
        assert on_b.events(job["id"]) == []
        # A repeat of an idempotent submit on B answers with A's job, not a new one.
        body = {"skill": "echo", "inputs": {"text": "once"}}
        key = {"Idempotency-Key": f"once-{job['id']}"}
        first = api.http.post("/v1/jobs", json=body, headers=key).json()
        repeat = on_b.http.post("/v1/jobs", json=body, headers=key)
        assert repeat.status_code == 200, repeat.text
        assert repeat.json()["id"] == first["id"]
        assert repeat.json()["status"] == "queued"
        # A gateway that restarted in that window knows it too.
        stack.restart_service("gateway")
        again = api.http.get(f"/v1/jobs/{job['id']}")
        assert again.status_code == 200, again.text
        assert again.json()["status"] == "queued"
    finally:
        # One scheduler alone is enough to admit it.
        stack.start_service(replicas[1])
    assert on_b.wait_terminal(job["id"])["status"] == "succeeded"
    assert on_b.wait_terminal(first["id"])["status"] == "succeeded"
    stack.start_service("scheduler")
    jobs = [api.submit("echo", {"text": f"both{i}"}).json()["id"] for i in range(10)]
    for job_id in jobs:
        assert on_b.wait_terminal(job_id)["status"] == "succeeded"


def test_a_cancel_sent_before_any_scheduler_admitted_the_job_is_not_lost(
    api: Api, on_b: Api, stack: Stack, replicas: tuple[str, str]
) -> None:
    schedulers = ["scheduler", replicas[1]]
    for name in schedulers:
        stack.kill_service(name, signal.SIGTERM)
    try:
        job = api.submit("nap", {"seconds": 30}).json()
        # Accepted, not admitted: the cancel is queued behind the submit.
        r = on_b.http.post(f"/v1/jobs/{job['id']}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "queued"
    finally:
        for name in schedulers:
            stack.start_service(name)
    # The scheduler that takes the cancel first waits for the admission, then cancels:
    # the job never runs.
    assert api.wait_terminal(job["id"])["status"] == "cancelled"
    assert [e["type"] for e in api.events(job["id"])] == ["queued", "cancelled"]
