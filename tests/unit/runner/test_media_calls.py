"""A job's media calls (S2) in the runner, over fakes: the agent's ``media`` tool and the
checks every media call makes — the slug, the job's cost cap, the usage recorded only for
a call the upstream served, the output saved with its origin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import AgentRig as Rig
from agent_fakes import ScriptedModel, tool
from agent_fakes import agent_job as _job
from runner_fakes import Clock, FakeLog

from puras_common.events.types import DriveOrigin, JobSucceeded, MediaUsageRecorded, ToolResulted
from puras_common.pricing import load_registry
from puras_runner.adapters.media_routes import load_media_routes
from puras_runner.adapters.media_upstream import MediaUpstreamError
from puras_runner.app.attempt import Attempt
from puras_runner.app.media import MediaCalls, MediaError
from puras_runner.app.spend_guard import SpendGuard


@dataclass(frozen=True)
class _Reply:
    request_id: str
    result: Mapping[str, Any]


@dataclass(frozen=True)
class _Got:
    size: int
    content_type: str | None


@dataclass
class FakeUpstream:
    fail: MediaUpstreamError | None = None
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def generate(self, upstream_model: str, inputs: dict[str, Any]) -> _Reply:
        self.calls.append((upstream_model, inputs))
        if self.fail is not None:
            raise self.fail
        return _Reply("req-1", {"images": [{"url": "https://cdn.example/out.webp"}], "seed": 3})

    async def download(self, url: str, dest: Path) -> _Got:
        dest.write_bytes(b"RIFF....WEBP")
        return _Got(12, "image/webp")


@dataclass
class FakeFiles:
    saved: dict[str, bytes] = field(default_factory=dict)
    announced: list[tuple[str, DriveOrigin]] = field(default_factory=list)

    async def save(self, attempt: Attempt, path: str, source: Path) -> int:
        self.saved[path] = source.read_bytes()
        return len(self.saved[path])

    async def written(
        self, attempt: Attempt, path: str, *, size: int, content_type: str, origin: DriveOrigin
    ) -> None:
        self.announced.append((path, origin))

    async def deleted(self, attempt: Attempt, paths: Sequence[str], *, origin: DriveOrigin) -> None:
        raise AssertionError("no delete expected")


def _rig(tmp_path: Path, model: ScriptedModel, upstream: FakeUpstream, files: FakeFiles) -> Rig:
    rig = Rig(tmp_path, model)
    rig.engine.media = MediaCalls(
        upstream=upstream,
        routes=load_media_routes(),
        pricing=load_registry(),
        margin_pct=20,
        spend=SpendGuard(None, Clock(), 900),
        files=files,
        scratch=tmp_path,
    )
    return rig


IMAGE = {"model": "openai/gpt-image-2", "inputs": {"prompt": "a dot", "quality": "low"}}


def _results(rig: Rig) -> list[ToolResulted]:
    return [r for r in rig.log.events(ToolResulted) if r.name == "media"]


async def test_the_media_tool_saves_the_output_records_usage_and_names_its_origin(
    tmp_path: Path,
) -> None:
    upstream, files = FakeUpstream(), FakeFiles()
    model = ScriptedModel(tool("media", IMAGE), tool("set_output", {"answer": "done"}))
    rig = _rig(tmp_path, model, upstream, files)
    await rig.run()
    assert upstream.calls == [("fal-ai/gpt-image-2/text-to-image", IMAGE["inputs"])]
    assert files.saved == {"media/req-1.webp": b"RIFF....WEBP"}  # the URL's extension
    ((path, origin),) = files.announced
    assert path == "media/req-1.webp"
    assert origin == DriveOrigin(job_id="job-1", skill="agent", tool="media")
    (usage,) = rig.log.events(MediaUsageRecorded)
    assert (usage.call, usage.model, usage.request_id) == (1, "openai/gpt-image-2", "req-1")
    assert usage.inputs == IMAGE["inputs"]
    (result,) = _results(rig)
    assert not result.is_error
    assert '"drive_path": "media/req-1.webp"' in result.content[0].text  # type: ignore[union-attr]
    assert '"billed_micros": 7200' in result.content[0].text  # type: ignore[union-attr]
    assert rig.log.events(JobSucceeded)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"model": "nobody/none", "inputs": {}}, "unknown media model 'nobody/none'"),
        ({**IMAGE, "output_path": "../x.png"}, "'..' segment"),
        ({**IMAGE, "kind": "hologram"}, "is not one of"),
    ],
)
async def test_a_refused_call_reaches_no_upstream_and_bills_nothing(
    tmp_path: Path, call: dict[str, Any], message: str
) -> None:
    upstream, files = FakeUpstream(), FakeFiles()
    model = ScriptedModel(tool("media", call), tool("set_output", {"answer": "x"}))
    rig = _rig(tmp_path, model, upstream, files)
    await rig.run()
    (result,) = _results(rig)
    assert result.is_error
    assert message in result.content[0].text  # type: ignore[union-attr]
    assert upstream.calls == []
    assert rig.log.events(MediaUsageRecorded) == []


async def test_a_call_over_the_jobs_cost_cap_is_refused_before_it_is_made(tmp_path: Path) -> None:
    upstream = FakeUpstream()
    media = _rig(tmp_path, ScriptedModel(), upstream, FakeFiles()).engine.media
    assert media is not None
    job = _job()
    fields = {f: getattr(job, f) for f in job.__struct_fields__}
    attempt = Attempt(
        events=FakeLog(),
        job=type(job)(**{**fields, "max_cost_micros": 10_000}),
        attempt=1,
        runner_id="r",
        clock=Clock(),
        max_log_bytes=1000,
        log_flush_s=0.1,
    )
    attempt.spent = 5_000  # what the run's model calls cost so far
    with pytest.raises(MediaError, match="cost cap reached: 5000 of 10000 micros") as refused:
        await media.generate(attempt, IMAGE, tool=None)
    assert refused.value.status == 409
    assert upstream.calls == []
    attempt.spent = 2_800  # 2,800 + 7,200 is the cap exactly: allowed
    made = await media.generate(attempt, IMAGE, tool=None)
    assert made["billed_micros"] == 7_200
    assert attempt.spent == 10_000


async def test_a_failed_upstream_call_is_reported_and_not_billed(tmp_path: Path) -> None:
    upstream = FakeUpstream(fail=MediaUpstreamError(422, "prompt: field required"))
    model = ScriptedModel(tool("media", IMAGE), tool("set_output", {"answer": "x"}))
    rig = _rig(tmp_path, model, upstream, FakeFiles())
    await rig.run()
    (result,) = _results(rig)
    assert "the model refused the inputs" in result.content[0].text  # type: ignore[union-attr]
    assert "prompt: field required" in result.content[0].text  # type: ignore[union-attr]
    assert rig.log.events(MediaUsageRecorded) == []
