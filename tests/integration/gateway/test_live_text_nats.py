"""The model's text as it is generated, end to end over a real nats-server (Z5): the
runner's ``NatsLiveFeed`` publishes as the runner identity, the gateway's job stream
follows as the gateway identity, and nothing of the text is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from gateway_fakes import FakeCommands, FakeLiveViews, FakeReadViews
from nats.js.errors import NotFoundError

from puras_cli.client import SseEvent, iter_sse
from puras_cli.infra.nats_server import NatsServer
from puras_common.bus import Bus, connect
from puras_common.events import AnyEvent, JobQueued, JobStarted, JobSucceeded
from puras_common.events.commands import RunJob
from puras_common.events.subjects import AGG_JOB, live_subject
from puras_common.events.types import ModelResponded, ModelUsage, TextBlock
from puras_common.ids import new_id
from puras_gateway.adapters.job_log import JobLog
from puras_gateway.adapters.live_frames import LiveJobFrames
from puras_gateway.app.auth import Principal
from puras_gateway.app.jobs import JobsService
from puras_runner.adapters.live import NatsLiveFeed

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def as_identity(nats_server: NatsServer) -> AsyncIterator[dict[str, Bus]]:
    conns: dict[str, Bus] = {}
    for name in ("gateway", "runner"):
        conns[name] = await connect(
            nats_server.address, name=f"test-{name}", credentials=nats_server.credentials(name)
        )
    try:
        yield conns
    finally:
        for b in conns.values():
            await b.close()


def _job(project: str, job: str) -> RunJob:
    return RunJob(
        job_id=job,
        project_id=project,
        skill="agent",
        inputs={},
        deployment_id="d1",
        created_at=T0,
        bundle_key="k",
        bundle_sha256="s",
    )


def _response(step: int, text: str) -> ModelResponded:
    return ModelResponded(
        step=step,
        content=[TextBlock(text=text)],
        stop_reason="end_turn",
        usage=ModelUsage(input_tokens=3, output_tokens=2),
    )


async def _frame(gen: AsyncIterator[bytes]) -> SseEvent:
    while True:
        frames = list(iter_sse((await anext(gen)).decode().split("\n")))
        if frames:
            return frames[0]


def _shape(f: SseEvent) -> tuple[str, str | None, Any]:
    data = f.json()
    if f.event == "model_delta":
        return ("model_delta", f.id, data["payload"])
    return (data.get("type", f.event), f.id, None)


async def test_live_text_reaches_an_attached_stream_and_is_never_stored(
    bus: Bus, as_identity: dict[str, Bus]
) -> None:
    gw, runner = as_identity["gateway"], as_identity["runner"]
    project, job_id = new_id(), new_id()
    job = _job(project, job_id)
    feed = NatsLiveFeed(runner)
    n = 0

    async def append(by: Bus, ev: AnyEvent) -> None:
        nonlocal n
        n += 1
        await by.append(
            ev, project_id=project, aggregate=AGG_JOB, aggregate_id=job_id, event_id=f"e{n}"
        )

    views = FakeLiveViews()
    views.deploy(project, "d1", ["agent"], T0)
    svc = JobsService(
        commands=FakeCommands(),
        views=views,
        reads=FakeReadViews(),
        job_log=JobLog(gw),
        live=LiveJobFrames(gw),
        ping_s=60,
    )
    who = Principal(project_id=project, key_prefix="k")

    # The scheduler's and the runner's facts; no one listens to live text yet (lost).
    await append(bus, JobQueued(skill="agent", inputs={}, deployment_id="d1", created_at=T0))
    await append(runner, JobStarted(attempt=1, deployment_id="d1", runner_id="r", started_at=T0))
    feed.publish(job, {"type": "model_delta", "step": 1, "text": "unheard"})
    await feed.close()
    await runner.nc.flush()  # at the server, and gone, before the stream subscribes

    gen = await svc.attach(who, job_id, after=0)
    assert [_shape(await _frame(gen)) for _ in range(2)] == [
        ("queued", "1", None),
        ("started", "2", None),
    ]
    feed.publish(job, {"type": "model_delta", "step": 1, "text": "Hel"})
    feed.publish(job, {"type": "model_delta", "step": 1, "text": "lo"})
    assert [_shape(await _frame(gen)) for _ in range(2)] == [
        ("model_delta", "2", {"step": 1, "text": "Hel"}),
        ("model_delta", "2", {"step": 1, "text": "lo"}),
    ]
    # The response is on the stream before a straggler of its step arrives: dropped.
    await append(runner, _response(1, "Hello"))
    assert _shape(await _frame(gen)) == ("model_response", "3", None)
    feed.publish(job, {"type": "model_delta", "step": 1, "text": " (late)"})
    feed.publish(job, {"type": "model_delta", "step": 2, "text": "Bye"})
    assert _shape(await _frame(gen)) == ("model_delta", "3", {"step": 2, "text": "Bye"})

    # Resuming from a delta's id: the next durable event, nothing lost, nothing repeated.
    resumed = await svc.attach(who, job_id, after=3)
    feed.publish(job, {"type": "model_delta", "step": 2, "text": "!"})
    assert _shape(await _frame(resumed)) == ("model_delta", "3", {"step": 2, "text": "!"})
    assert _shape(await _frame(gen)) == ("model_delta", "3", {"step": 2, "text": "!"})
    await append(runner, _response(2, "Bye!"))
    done = JobSucceeded(result={"ok": True}, attempt=1, started_at=T0, finished_at=T0)
    await append(runner, done)
    for stream in (gen, resumed):
        assert [_shape(await _frame(stream)) for _ in range(3)] == [
            ("model_response", "4", None),
            ("succeeded", "5", None),
            ("end", None, None),
        ]
        assert [f async for f in stream] == []
    await feed.close()

    # The events API and the log hold the whole responses, never a delta.
    events = (await svc.events(who, job_id))["events"]
    assert [e["type"] for e in events] == [
        "queued",
        "started",
        "model_response",
        "model_response",
        "succeeded",
    ]
    with pytest.raises(NotFoundError):
        await bus.js.find_stream_name_by_subject(live_subject(project, job_id))


async def test_a_publish_never_raises_into_the_loop(
    nats_server: NatsServer, as_identity: dict[str, Bus]
) -> None:
    runner = as_identity["runner"]
    feed = NatsLiveFeed(runner)
    # A job id that cannot be a subject token, and a connection that is gone: dropped.
    feed.publish(_job(new_id(), "not.a.token"), {"type": "model_delta", "step": 1, "text": "x"})
    await runner.close()
    feed.publish(_job(new_id(), new_id()), {"type": "model_delta", "step": 1, "text": "x"})
    await feed.close()
