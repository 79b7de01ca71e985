"""Nothing accepted is lost: runners, the scheduler and nats-server killed mid-flight.

Each test gets its own stack (it kills parts of it). Waits are on job events (SSE), never
on sleeps; the only sleeping is inside the skill being run.
"""

from __future__ import annotations

import signal

import pytest

from puras_cli.devstack import Stack
from stackapi import Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_a_runner_killed_mid_job_leads_to_a_second_attempt(own_stack: Stack, own_api: Api) -> None:
    job = own_api.submit("nap", {"seconds": 2}).json()
    own_api.wait_for_event(job["id"], "started")
    own_stack.kill_service("runner", signal.SIGKILL)
    own_stack.start_service("runner")
    final = own_api.wait_terminal(job["id"])
    assert final["status"] == "succeeded"
    assert final["attempts"] == 2
    starts = [e for e in own_api.events(job["id"]) if e["type"] == "started"]
    assert [e["payload"]["attempt"] for e in starts] == [1, 2]


@pytest.mark.parametrize("own_stack", [{"PURAS_RUNNER_MAX_ATTEMPTS": "1"}], indirect=True)
def test_after_the_last_delivery_the_job_fails_with_runner_lost(
    own_stack: Stack, own_api: Api
) -> None:
    job = own_api.submit("nap", {"seconds": 5}).json()
    own_api.wait_for_event(job["id"], "started")
    own_stack.kill_service("runner", signal.SIGKILL)
    own_stack.start_service("runner")
    final = own_api.wait_terminal(job["id"])
    assert final["status"] == "failed"
    assert final["error"] == "runner lost"
    assert final["attempts"] == 1


def test_jobs_submitted_while_the_scheduler_is_down_run_when_it_returns(
    own_stack: Stack, own_api: Api
) -> None:
    own_stack.kill_service("scheduler", signal.SIGKILL)
    accepted = [own_api.submit("echo", {"text": str(i)}).json() for i in range(5)]
    assert {j["status"] for j in accepted} == {"queued"}
    # Accepted means stored: readable now, even though nobody admitted them yet (J4).
    for j in accepted:
        assert own_api.http.get(f"/v1/jobs/{j['id']}").status_code == 200
    own_stack.start_service("scheduler")
    for i, j in enumerate(accepted):
        final = own_api.wait_terminal(j["id"])
        assert final["status"] == "succeeded"
        assert final["result"] == {"echoed": str(i)}


def test_a_scheduler_restart_with_jobs_in_flight_loses_nothing(
    own_stack: Stack, own_api: Api
) -> None:
    running = own_api.submit("nap", {"seconds": 2}).json()
    own_api.wait_for_event(running["id"], "started")
    queued = [own_api.submit("echo", {"text": str(i)}).json() for i in range(10)]
    own_stack.restart_service("scheduler")
    assert own_api.wait_terminal(running["id"])["status"] == "succeeded"
    for j in queued:
        assert own_api.wait_terminal(j["id"])["status"] == "succeeded"


def test_an_accepted_job_survives_a_nats_server_restart(own_stack: Stack, own_api: Api) -> None:
    own_stack.kill_service("scheduler", signal.SIGKILL)
    job = own_api.submit("echo", {"text": "durable"}).json()
    assert own_stack.nats is not None
    own_stack.nats.restart()  # same store dir: the command must still be there
    own_stack.start_service("scheduler")
    final = own_api.wait_terminal(job["id"])
    assert final["status"] == "succeeded"
    assert final["result"] == {"echoed": "durable"}
