"""The model's text as it is generated, on a job's SSE stream (Z5): deltas interleaved
with the durable events, late ones dropped, ids that resume without loss, bounded
buffering. The job tail and the live buffer are the NATS adapters' own, fed by hand."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from gateway_fakes import T0, FakeCommands, FakeJobLog, FakeLiveViews, FakeReadViews

from puras_cli.client import SseEvent, iter_sse
from puras_common.events import AnyEvent, JobQueued, JobStarted, JobSucceeded
from puras_common.events.base import decode_envelope, decode_event, encode_event
from puras_common.events.types import ModelResponded, ModelUsage, TextBlock
from puras_gateway.adapters.job_log import JobTail
from puras_gateway.adapters.live_frames import LiveJobTail
from puras_gateway.app.auth import Principal
from puras_gateway.app.jobs import JobsService
from puras_gateway.domain.job_events import JobEvent
from puras_gateway.domain.live import ModelDelta, parse_live_frame

P = "0a1b2c3d-0000-7000-8000-000000000001"
JOB = "0a1b2c3d-0000-7000-8000-0000000000aa"
WHO = Principal(project_id=P, key_prefix="k")


class Log(FakeJobLog):
    """The job's subject: events appended reach every open tail, as on NATS."""

    def __init__(self) -> None:
        super().__init__()
        self.tails: list[JobTail] = []
        self.n = 0

    async def tail(self, project_id: str, job_id: str) -> JobTail:  # type: ignore[override]
        t = JobTail()
        self.tails.append(t)
        return t

    def append(self, ev: AnyEvent) -> None:
        self.n += 1
        data = encode_event(ev, event_id=f"{JOB}:{self.n}", project_id=P, aggregate_id=JOB, at=T0)
        env = decode_envelope(data)
        events = self.jobs.setdefault((P, JOB), [])
        events.append(JobEvent(idx=self.n, envelope=env, event=decode_event(env), seq=self.n))
        for t in self.tails:
            t.offer(data)


class Tail(LiveJobTail):
    closed = False

    async def close(self) -> None:
        self.closed = True
        await super().close()


class Live:
    """The job's live subject: frames reach the streams following it now."""

    def __init__(self) -> None:
        self.tails: list[Tail] = []

    async def follow(self, project_id: str, job_id: str) -> Tail:
        t = Tail()
        self.tails.append(t)
        return t

    def delta(self, step: int, text: str) -> None:
        frame = json.dumps({"type": "model_delta", "step": step, "text": text}).encode()
        for t in self.tails:
            if not t.closed:
                t.offer(frame)


def _service(log: Log, live: Live) -> JobsService:
    views = FakeLiveViews()
    views.deploy(P, "d1", ["agent"], T0)
    return JobsService(
        commands=FakeCommands(),
        views=views,
        reads=FakeReadViews(),
        job_log=log,
        live=live,
        ping_s=60,
    )


def _queued() -> JobQueued:
    return JobQueued(skill="agent", inputs={}, deployment_id="d1", created_at=T0)


def _started() -> JobStarted:
    return JobStarted(attempt=1, deployment_id="d1", runner_id="r", started_at=T0)


def _response(step: int, text: str) -> ModelResponded:
    return ModelResponded(
        step=step,
        content=[TextBlock(text=text)],
        stop_reason="end_turn",
        usage=ModelUsage(input_tokens=1, output_tokens=1),
    )


def _done() -> JobSucceeded:
    return JobSucceeded(result={"ok": True}, attempt=1, started_at=T0, finished_at=T0)


async def _frame(gen: AsyncIterator[bytes]) -> SseEvent:
    """The next frame that is not a ping."""
    while True:
        raw = await anext(gen)
        frames = list(iter_sse(raw.decode().split("\n")))
        if frames:
            (f,) = frames
            return f


def _shape(f: SseEvent) -> tuple[str, str | None, Any]:
    data = f.json()
    if f.event == "model_delta":
        return ("model_delta", f.id, data["payload"])
    return (data.get("type", f.event), f.id, None)


async def test_deltas_come_before_their_response_and_late_ones_are_dropped() -> None:
    log, live = Log(), Live()
    log.append(_queued())
    log.append(_started())
    gen = await _service(log, live).attach(WHO, JOB, after=0)
    assert [_shape(await _frame(gen)) for _ in range(2)] == [
        ("queued", "1", None),
        ("started", "2", None),
    ]
    live.delta(1, "Hel")
    live.delta(1, "lo")
    f1, f2 = await _frame(gen), await _frame(gen)
    assert f1.data == '{"type":"model_delta","payload":{"step":1,"text":"Hel"}}'
    assert [_shape(f1), _shape(f2)] == [
        ("model_delta", "2", {"step": 1, "text": "Hel"}),
        ("model_delta", "2", {"step": 1, "text": "lo"}),
    ]
    # A delta and its step's response both waiting: the delta reached the gateway first
    # (a runner publishes a step's text before its response), so it goes first.
    live.delta(1, "!")
    log.append(_response(1, "Hello!"))
    assert [_shape(await _frame(gen)) for _ in range(2)] == [
        ("model_delta", "2", {"step": 1, "text": "!"}),
        ("model_response", "3", None),
    ]
    # A straggler of the answered step is dropped; the next step's text goes on.
    live.delta(1, "late")
    live.delta(2, "Next")
    assert _shape(await _frame(gen)) == ("model_delta", "3", {"step": 2, "text": "Next"})
    # Text still buffered when the job ends is superseded by the log: the stream ends.
    live.delta(2, " step")
    log.append(_done())
    assert [_shape(await _frame(gen)) for _ in range(2)] == [
        ("succeeded", "4", None),
        ("end", None, None),
    ]
    assert [f async for f in gen] == []
    assert live.tails[0].closed
    # Nothing of it is an event.
    events = (await _service(log, live).events(WHO, JOB))["events"]
    assert [e["type"] for e in events] == ["queued", "started", "model_response", "succeeded"]


async def test_a_waiting_stream_wakes_for_a_delta() -> None:
    log, live = Log(), Live()
    log.append(_queued())
    gen = await _service(log, live).attach(WHO, JOB, after=0)
    await _frame(gen)
    pending = asyncio.ensure_future(_frame(gen))
    await asyncio.sleep(0)  # let the stream start waiting (a yield, not a timed wait)
    assert not pending.done()
    live.delta(1, "hi")
    assert _shape(await pending) == ("model_delta", "1", {"step": 1, "text": "hi"})
    await gen.aclose()  # type: ignore[attr-defined]
    assert live.tails[0].closed


async def test_a_resumed_stream_drops_deltas_of_answered_steps_and_repeats_the_id() -> None:
    log, live = Log(), Live()
    for ev in (_queued(), _started(), _response(1, "Hello")):
        log.append(ev)
    svc = _service(log, live)
    gen = await svc.attach(WHO, JOB, after=3)
    live.delta(1, "late")
    live.delta(2, "Wor")
    # Nothing durable after 3 is sent; the delta's id says the client has up to 3.
    delta = await _frame(gen)
    assert _shape(delta) == ("model_delta", "3", {"step": 2, "text": "Wor"})
    log.append(_response(2, "World"))
    assert _shape(await _frame(gen)) == ("model_response", "4", None)
    await gen.aclose()  # type: ignore[attr-defined]
    # Resuming from a delta's id loses no durable event.
    again = await svc.attach(WHO, JOB, after=int(delta.id or 0))
    assert _shape(await _frame(again)) == ("model_response", "4", None)
    await again.aclose()  # type: ignore[attr-defined]


async def test_a_stream_of_an_ended_job_follows_no_live_text() -> None:
    log, live = Log(), Live()
    for ev in (_queued(), _started(), _done()):
        log.append(ev)
    frames = [f async for f in await _service(log, live).attach(WHO, JOB, after=0)]
    assert len(frames) == 4
    assert all(t.closed for t in live.tails)


def test_a_stream_that_is_not_read_keeps_only_the_newest_deltas() -> None:
    t = LiveJobTail(max_pending=3, max_bytes=10_000)
    for i in range(10):
        t.offer(json.dumps({"type": "model_delta", "step": 1, "text": str(i)}).encode())
    assert [d.text for d in t.drain()] == ["7", "8", "9"]
    assert t.dropped == 7
    assert t.drain() == []


def test_the_buffer_is_bounded_in_bytes_too() -> None:
    t = LiveJobTail(max_pending=1000, max_bytes=300)
    big = "x" * 100
    for _ in range(10):
        t.offer(json.dumps({"type": "model_delta", "step": 1, "text": big}).encode())
    kept = t.drain()
    assert 1 <= len(kept) <= 2
    assert t.dropped == 10 - len(kept)


def test_frames_that_are_not_deltas_are_ignored() -> None:
    assert parse_live_frame(b'{"type": "model_delta", "step": 2, "text": "a"}') == ModelDelta(
        step=2, text="a"
    )
    for bad in (
        b"",
        b"not json",
        b'{"type": "other", "step": 1, "text": "a"}',
        b'{"type": "model_delta", "step": 0, "text": "a"}',
        b'{"type": "model_delta", "step": "1", "text": "a"}',
        b'{"type": "model_delta", "text": "a"}',
        msgspec.json.encode(["model_delta", 1, "a"]),
    ):
        assert parse_live_frame(bad) is None, bad
