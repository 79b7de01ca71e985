"""The app client (``puras_client.Puras`` / ``AsyncPuras``) against the whole stack:
submit and wait, list with a cursor, stream (also across a connection cut in the middle),
attach, cancel, typed errors, skills and uploads."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from puras_client import AsyncPuras, NotFound, Puras
from stackapi import Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


class CutAfterFirstFrame(httpx.BaseTransport):
    """The real gateway, but the first event stream loses its connection right after its
    first frame, the way a proxy or a flaky network drops one."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.cut = 0
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        resp = self.inner.handle_request(request)
        if "text/event-stream" not in resp.headers.get("content-type", "") or self.cut:
            return resp
        self.cut += 1
        upstream = resp.stream

        def first_frame_then_drop() -> Iterator[bytes]:
            buf = b""
            try:
                for chunk in upstream:  # type: ignore[union-attr]
                    buf += chunk
                    end = buf.find(b"\n\n")
                    if end >= 0:
                        yield buf[: end + 2]
                        break
            finally:
                upstream.close()  # type: ignore[union-attr]
            raise httpx.ReadError("connection cut by the test")

        class Body(httpx.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                return first_frame_then_drop()

        return httpx.Response(resp.status_code, headers=resp.headers, stream=Body())

    def close(self) -> None:
        self.inner.close()


def test_submit_wait_get_and_typed_errors(api: Api) -> None:
    with Puras(api.base, api.key) as p:
        job = p.submit("echo", {"text": "hi"}, wait=True, timeout=30)
        assert job.status == "succeeded"
        assert job.result == {"echoed": "hi"}
        assert job.terminal
        assert p.get_job(job.id).status == "succeeded"
        assert [e.type for e in p.events(job.id)][-1] == "succeeded"
        with pytest.raises(NotFound) as nf:
            p.get_job("00000000-0000-0000-0000-000000000000")
        assert nf.value.status == 404
        assert nf.value.message
        with pytest.raises(NotFound, match="echo"):
            p.submit("no_such_skill", {})
        echo = next(s for s in p.skills() if s.name == "echo")
        assert echo.input_schema is not None


def test_list_pages_with_the_cursor_reach_every_job(api: Api) -> None:
    with Puras(api.base, api.key) as p:
        ids = [p.submit("echo", {"text": str(i)}).id for i in range(5)]
        first = p.list_jobs(limit=2)
        assert len(first.jobs) == 2
        assert first.next_cursor
        pages = list(p.pages(limit=2))
        assert [len(pg.jobs) for pg in pages] == [2, 2, 1]
        assert pages[-1].next_cursor is None
        # Newest first, each job once.
        assert [j.id for j in p.iter_jobs(limit=2)] == ids[::-1]


def test_submit_stream_runs_to_the_end_frame(api: Api) -> None:
    with Puras(api.base, api.key) as p:
        events = list(p.submit_stream("echo", {"text": "streamed"}))
    assert events[0].type == "queued"
    assert events[-1].type == "end"
    durable = [e for e in events if e.id is not None]
    assert [e.id for e in durable] == list(range(1, len(durable) + 1))
    final = events[-1].job
    assert final is not None
    assert final.result == {"echoed": "streamed"}
    assert {e.job_id for e in durable} == {final.id}


def test_a_cut_stream_resumes_with_nothing_lost_or_repeated(api: Api) -> None:
    cutter = CutAfterFirstFrame()
    with Puras(api.base, api.key, transport=cutter, reconnect_delay=0) as p:
        events = list(p.submit_stream("nap", {"seconds": 0.5}))
        final = events[-1].job
        assert final is not None
        assert final.status == "succeeded"
        reference = [(e.id, e.type) for e in p.events(final.id)]
    assert cutter.cut == 1
    resumed = [r for r in cutter.requests if r.url.path.endswith("/stream")]
    assert len(resumed) == 1
    assert resumed[0].headers["Last-Event-ID"] == "1"
    assert [(e.id, e.type) for e in events if e.id is not None] == reference


def test_attach_after_an_event_and_cancel(api: Api) -> None:
    with Puras(api.base, api.key) as p:
        done = p.submit("echo", {"text": "x"}, wait=True)
        later = list(p.attach(done.id, after=1))
        assert later[0].id == 2
        assert later[-1].type == "end"
        napping = p.submit("nap", {"seconds": 20})
        cancelled = p.cancel_job(napping.id)
        assert cancelled.status in ("cancelled", "running", "queued")
        ended = list(p.attach(napping.id))[-1].job
        assert ended is not None
        assert ended.status == "cancelled"


def test_upload_to_the_drive(api: Api) -> None:
    with Puras(api.base, api.key) as p:
        up = p.upload(b"hello drive", filename="note.txt", path="inbox/")
    assert up.drive_path == "inbox/note.txt"
    assert up.bytes == len(b"hello drive")


async def test_the_async_client_submits_lists_and_streams(api: Api) -> None:
    async with AsyncPuras(api.base, api.key) as p:
        job = await p.submit("echo", {"text": "async"}, wait=True)
        assert job.result == {"echoed": "async"}
        assert [j.id async for j in p.iter_jobs(limit=1)] == [job.id]
        events = [e async for e in p.submit_stream("echo", {"text": "s"})]
        assert events[-1].type == "end"
