"""A read right after a submit finds the job on any replica (J4), with no memory of its own.

Two gateways are built with :func:`puras_gateway.bootstrap.build` over fakes of their
ports that share one "stack": a submit on A puts a command in the shared queue, and B,
which never saw the submit, answers it as queued until the log has the job.
"""

from __future__ import annotations

import pytest
from gateway_fakes import T0, FakeCommands, FakeJobLog, job_reads_gateway

from puras_gateway.app.auth import Principal
from puras_gateway.bootstrap import App
from puras_gateway.domain.errors import ApiError
from puras_gateway.domain.requests import parse_submit_body, parse_submit_mode

P = "0a1b2c3d-0000-7000-8000-000000000001"
WHO = Principal(project_id=P, key_prefix="k")


def _gateway(queue: FakeCommands, log: FakeJobLog) -> App:
    return job_reads_gateway(P, queue, log)


async def test_a_submit_on_a_is_read_on_b_before_and_after_admission() -> None:
    queue, log = FakeCommands(), FakeJobLog()
    a, b = _gateway(queue, log), _gateway(queue, log)
    body = parse_submit_body(b'{"skill": "echo", "inputs": {"text": "hi"}}')
    submitted = await a.jobs.submit(WHO, body, parse_submit_mode(None, None, None, 30))
    assert isinstance(submitted, dict)
    assert submitted["status"] == "queued"
    job_id = submitted["id"]

    # B never saw the submit: the command in the queue is the job.
    assert await b.jobs.get(WHO, job_id) == submitted
    assert await b.jobs.events(WHO, job_id) == {"events": []}

    # The scheduler admits it (job.queued, then it acks the command): B reads the log.
    log.admit(queue.take(P, job_id), T0)
    assert await b.jobs.get(WHO, job_id) == submitted
    assert [e["type"] for e in (await b.jobs.events(WHO, job_id))["events"]] == ["queued"]

    # Another project's key never sees it.
    other = Principal(project_id="0a1b2c3d-0000-7000-8000-000000000002", key_prefix="x")
    with pytest.raises(ApiError) as err:
        await b.jobs.get(other, job_id)
    assert err.value.status == 404


async def test_an_unknown_job_is_a_404_at_once() -> None:
    b = _gateway(FakeCommands(), FakeJobLog())
    with pytest.raises(ApiError) as err:
        await b.jobs.get(WHO, "0a1b2c3d-0000-7000-8000-00000000dead")
    assert err.value.status == 404
