"""The app client (``Puras`` / ``AsyncPuras``) against a fake gateway: typed answers and
errors, cursor paging, and event streams that resume after a dropped connection with
nothing lost or repeated."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from puras_client import (
    AsyncClient,
    AsyncPuras,
    Client,
    ClientError,
    Conflict,
    JobEvent,
    JobOut,
    NotFound,
    Puras,
    ServerError,
    UnprocessableEntity,
)

JOB = {
    "id": "j1", "project_id": "p1", "skill": "echo", "status": "succeeded",
    "inputs": {"text": "hi"}, "result": {"echoed": "hi"}, "error": None, "cost_micros": 0,
    "deployment_id": "d1", "attempts": 1, "created_at": "2026-01-01T00:00:00Z",
    "started_at": "2026-01-01T00:00:01Z", "finished_at": "2026-01-01T00:00:02Z",
}  # fmt: skip


def frame(idx: int, type_: str = "log") -> bytes:
    data = {"id": idx, "type": type_, "payload": {"n": idx}, "at": "t", "job_id": "j1"}
    return b"event: %s\nid: %d\ndata: %s\n\n" % (type_.encode(), idx, json.dumps(data).encode())


END = b"event: end\ndata: " + json.dumps(JOB).encode() + b"\n\n"
DELTA = b'event: model_delta\nid: 3\ndata: {"type":"model_delta","payload":{"text":"he"}}\n\n'


class Dropping(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that sends ``chunks`` and then, with ``drop``, loses the connection."""

    def __init__(self, chunks: list[bytes], drop: bool) -> None:
        self.chunks, self.drop = chunks, drop

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        if self.drop:
            raise httpx.ReadError("connection reset by peer")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for c in self.chunks:
            yield c
        if self.drop:
            raise httpx.ReadError("connection reset by peer")


class FakeGateway:
    """Scripted SSE answers: one per connection, in order; records every request."""

    def __init__(self, answers: list[tuple[list[bytes], bool]], header: bool = True) -> None:
        self.answers = answers
        self.header = header
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        chunks, drop = self.answers.pop(0)
        headers = {"content-type": "text/event-stream"}
        if self.header:
            headers["Puras-Job-Id"] = "j1"
        return httpx.Response(200, headers=headers, stream=Dropping(chunks, drop))


# The first connection drops in the middle of frame 3; the second resumes and the server
# replays frame 2 once more (as a server that resumes too early would): both are absorbed.
SCRIPT: list[tuple[list[bytes], bool]] = [
    ([frame(1, "queued"), frame(2, "started"), frame(3)[:20]], True),
    ([frame(2, "started"), frame(3), DELTA, frame(4), frame(5, "succeeded"), END], False),
]


def _check_resumed(events: list[JobEvent], gw: FakeGateway) -> None:
    assert [e.id for e in events] == [1, 2, 3, None, 4, 5, None]
    assert [e.type for e in events][-2:] == ["succeeded", "end"]
    final = events[-1].job
    assert final is not None
    assert final.status == "succeeded"
    assert final.result == {"echoed": "hi"}
    post, get = gw.requests
    assert (post.method, post.url.path, post.url.params["stream"]) == ("POST", "/v1/jobs", "true")
    assert json.loads(post.content) == {"skill": "echo", "inputs": {"text": "hi"}}
    assert (get.method, get.url.path) == ("GET", "/v1/jobs/j1/stream")
    assert get.headers["Last-Event-ID"] == "2"


def test_a_dropped_submit_stream_resumes_after_the_last_event() -> None:
    gw = FakeGateway([(list(c), d) for c, d in SCRIPT])
    with Puras("http://gw", "k", transport=httpx.MockTransport(gw), reconnect_delay=0) as p:
        events = list(p.submit_stream("echo", {"text": "hi"}))
    _check_resumed(events, gw)


async def test_the_async_client_resumes_the_same_way() -> None:
    gw = FakeGateway([(list(c), d) for c, d in SCRIPT])
    async with AsyncPuras(
        "http://gw", "k", transport=httpx.MockTransport(gw), reconnect_delay=0
    ) as p:
        events = [e async for e in p.submit_stream("echo", {"text": "hi"})]
    _check_resumed(events, gw)


def test_the_job_id_of_the_first_frame_is_enough_to_resume() -> None:
    gw = FakeGateway([([frame(1, "queued")], True), ([frame(2), END], False)], header=False)
    with Puras("http://gw", "k", transport=httpx.MockTransport(gw), reconnect_delay=0) as p:
        events = list(p.submit_stream("echo"))
    assert [e.id for e in events] == [1, 2, None]
    assert gw.requests[1].url.path == "/v1/jobs/j1/stream"


def test_a_stream_closed_before_its_end_frame_is_attached_again() -> None:
    gw = FakeGateway([([frame(1), frame(2)], False), ([frame(3, "succeeded"), END], False)])
    with Puras("http://gw", "k", transport=httpx.MockTransport(gw), reconnect_delay=0) as p:
        events = list(p.attach("j1"))
    assert [e.id for e in events] == [1, 2, 3, None]
    assert "Last-Event-ID" not in gw.requests[0].headers
    assert gw.requests[1].headers["Last-Event-ID"] == "2"


def test_attach_after_an_event_sends_it_as_last_event_id() -> None:
    gw = FakeGateway([([frame(5, "succeeded"), END], False)])
    with Puras("http://gw", "k", transport=httpx.MockTransport(gw)) as p:
        assert [e.type for e in p.attach("j1", after=4)] == ["succeeded", "end"]
    assert gw.requests[0].headers["Last-Event-ID"] == "4"


def test_a_drop_before_the_job_is_named_is_not_resubmitted() -> None:
    gw = FakeGateway([([b": ping\n\n"], True)], header=False)
    with (
        Puras("http://gw", "k", transport=httpx.MockTransport(gw), reconnect_delay=0) as p,
        pytest.raises(ClientError, match="before it named its job"),
    ):
        list(p.submit_stream("echo"))
    assert [r.method for r in gw.requests] == ["POST"]


def test_reconnects_without_progress_give_up() -> None:
    gw = FakeGateway([([frame(1)], True)] + [([], True)] * 3)
    with (
        Puras(
            "http://gw", "k", transport=httpx.MockTransport(gw), max_reconnects=2, reconnect_delay=0
        ) as p,
        pytest.raises(ClientError, match="dropped 3 times in a row"),
    ):
        list(p.attach("j1"))
    assert len(gw.requests) == 3


def _json_gateway(requests: list[httpx.Request]) -> httpx.MockTransport:
    pages = {
        None: {"jobs": [JOB, {**JOB, "id": "j2", "status": "queued", "held_reason": "no credit"}],
               "next_cursor": "c2"},
        "c2": {"jobs": [{**JOB, "id": "j3", "extra": 1}], "next_cursor": None},
    }  # fmt: skip

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        path = request.url.path
        if path == "/v1/jobs" and request.method == "GET":
            return httpx.Response(200, json=pages[request.url.params.get("cursor")])
        if path == "/v1/jobs":
            return httpx.Response(200, json={**JOB, "status": "queued"})
        if path == "/v1/jobs/gone":
            err = {"code": "job_not_found", "message": "no job 'gone' in this project"}
            return httpx.Response(404, json={"error": err})
        if path == "/v1/jobs/j1/cancel":
            err = {"code": "conflict", "message": "job j1 already succeeded"}
            return httpx.Response(409, json={"error": err})
        if path == "/v1/jobs/bad":
            return httpx.Response(422, json={"detail": [{"loc": ["body", "text"], "msg": "bad"}]})
        if path == "/v1/jobs/boom":
            return httpx.Response(503, text="upstream down")
        if path == "/v1/jobs/j1/events":
            return httpx.Response(200, json={"events": [{"id": 1, "type": "queued", "payload": {},
                                                         "at": "t"}]})  # fmt: skip
        if path == "/v1/deployments":
            dep = {"id": "d1", "notes": "", "created_at": "t", "active": False,
                   "bundle_size": 1, "skills": [{"name": "echo"}], "status": "failed",
                   "error": "pip: no such"}  # fmt: skip
            return httpx.Response(200, json={"deployments": [dep, {**dep, "id": "d0"}]})
        if path == "/v1/skills":
            skill = {"name": "echo", "kind": "deterministic", "entrypoint": "main.py:run",
                     "description": "d", "input_schema": {"type": "object"}}  # fmt: skip
            return httpx.Response(200, json={"deployment_id": "d1", "skills": [skill]})
        if path == "/v1/drive/upload":
            body = request.content
            return httpx.Response(200, json={"drive_path": "in/a.txt", "full_path": "p/in/a.txt",
                                             "signed_url": "u", "bytes": len(body),
                                             "content_type": "text/plain"})  # fmt: skip
        return httpx.Response(500, json={"error": {"code": "x", "message": path}})

    return httpx.MockTransport(answer)


def test_submit_sends_the_cap_and_the_idempotency_key() -> None:
    seen: list[httpx.Request] = []
    with Puras("http://gw", "k", transport=_json_gateway(seen)) as p:
        job = p.submit("echo", {"text": "hi"}, idempotency_key="order-7", max_cost_micros=500)
    assert isinstance(job, JobOut)
    assert job.status == "queued"
    assert not job.terminal
    assert seen[0].headers["Idempotency-Key"] == "order-7"
    assert seen[0].headers["Authorization"] == "Bearer k"
    assert json.loads(seen[0].content) == {
        "skill": "echo", "inputs": {"text": "hi"}, "max_cost_micros": 500,
    }  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [{"max_cost_micros": 0}, {"idempotency_key": "x" * 256}, {"timeout": 61, "wait": True}],
)
def test_submit_refuses_bad_arguments_before_sending(kwargs: dict[str, Any]) -> None:
    seen: list[httpx.Request] = []
    with Puras("http://gw", "k", transport=_json_gateway(seen)) as p, pytest.raises(ClientError):
        p.submit("echo", **kwargs)
    assert seen == []


def test_pages_follow_the_cursor_to_the_last() -> None:
    seen: list[httpx.Request] = []
    with Puras("http://gw", "k", transport=_json_gateway(seen)) as p:
        first = p.list_jobs(limit=2)
        assert first.next_cursor == "c2"
        assert first.jobs[1].held_reason == "no credit"
        assert first.jobs[0].held_reason is None
        ids = [j.id for j in p.iter_jobs(limit=2)]
    assert ids == ["j1", "j2", "j3"]
    assert [r.url.params.get("cursor") for r in seen] == [None, None, "c2"]
    assert seen[0].url.params["limit"] == "2"


async def test_async_pages_follow_the_cursor() -> None:
    seen: list[httpx.Request] = []
    async with AsyncPuras("http://gw", "k", transport=_json_gateway(seen)) as p:
        ids = [j.id async for j in p.iter_jobs()]
        assert (await p.events("j1"))[0].type == "queued"
    assert ids == ["j1", "j2", "j3"]


def test_errors_are_typed_by_status_and_carry_code_and_message() -> None:
    with Puras("http://gw", "k", transport=_json_gateway([])) as p:
        with pytest.raises(NotFound) as nf:
            p.get_job("gone")
        assert (nf.value.status, nf.value.code) == (404, "job_not_found")
        assert nf.value.message == "no job 'gone' in this project"
        with pytest.raises(Conflict, match="already succeeded"):
            p.cancel_job("j1")
        with pytest.raises(UnprocessableEntity, match="text: bad"):
            p.get_job("bad")
        with pytest.raises(ServerError) as se:
            p.get_job("boom")
        assert se.value.status == 503


def test_deployments_skills_and_uploads_are_typed() -> None:
    seen: list[httpx.Request] = []
    with Puras("http://gw", "k", transport=_json_gateway(seen)) as p:
        dep = p.deployments()[0]
        assert (dep.status, dep.error, dep.skills) == ("failed", "pip: no such", ["echo"])
        skill = p.skills()[0]
        assert skill.input_schema == {"type": "object"}
        assert skill.output_schema is None
        up = p.upload(b"hello", filename="a.txt", path="in/a.txt", content_type="text/plain")
    assert up.drive_path == "in/a.txt"
    body = seen[-1].content
    assert b'name="file"; filename="a.txt"' in body
    assert b"hello" in body
    assert b'name="path"' in body
    assert b"in/a.txt" in body


async def test_the_typed_calls_run_over_a_front_ends_own_client() -> None:
    seen: list[httpx.Request] = []
    sync = Client("http://gw", "k", user_agent="front/1", transport=_json_gateway(seen))
    with Puras.over(sync) as p:
        assert p.list_jobs().jobs[0].id == "j1"
    async with AsyncPuras.over(
        AsyncClient("http://gw", "k", user_agent="front/1", transport=_json_gateway(seen))
    ) as ap:
        assert (await ap.list_jobs()).jobs[0].id == "j1"
    assert [r.headers["User-Agent"] for r in seen] == ["front/1", "front/1"]
