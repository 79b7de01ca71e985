"""The runner built by ``bootstrap.build`` over fakes: work in, events out, no NATS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_fakes import FakeLive, ScriptedModel, text
from runner_fakes import (
    T0,
    Clock,
    FakeDeploymentLog,
    FakeLog,
    FakeMsg,
    FakeWorkSource,
    MemoryBundleStore,
)
from runner_helpers import make_zip

from puras_common.bundles import sha256_hex
from puras_common.events.commands import RunJob
from puras_common.events.types import (
    BundleRef,
    DeploymentCreated,
    JobFailed,
    JobSucceeded,
    SkillRecord,
)
from puras_runner.bootstrap import App, build
from puras_runner.settings import RunnerSettings

FILES = {
    "skills/helper/skill.yaml": "description: agentic\nentrypoint: SKILL.md\n",
    "skills/helper/SKILL.md": "You are helpful.\n",
}
SKILLS = [SkillRecord(name="helper", kind="agentic", entrypoint="SKILL.md")]


@dataclass
class Built:
    app: App
    log: FakeLog
    work: FakeWorkSource
    store: MemoryBundleStore
    deployments: FakeDeploymentLog
    closed: list[bool]


@pytest.fixture
async def built(tmp_path: Path) -> AsyncIterator[Built]:
    settings = RunnerSettings(
        env="test",
        data_dir=tmp_path / "runner",
        drive_root=tmp_path / "drive",
        sandbox="off",
        cgroups=False,
        log_level="warning",
        log_format="console",
    )
    log, work = FakeLog(), FakeWorkSource()
    store, deployments = MemoryBundleStore(), FakeDeploymentLog()
    closed: list[bool] = []

    async def on_close() -> None:
        closed.append(True)

    app = build(
        settings,
        events=log,
        work=work,
        bundle_store=store,
        deployment_log=deployments,
        runner_id="runner-a",
        live=FakeLive(),
        models=ScriptedModel(text("Hello from the built runner.")),
        clock=Clock(),
        on_close=on_close,
    )
    app.start()
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    yield Built(app, log, work, store, deployments, closed)
    stop.set()
    await asyncio.wait_for(task, 10)


async def _deploy(
    b: Built, *, record: bool = True, recorded_sha256: str | None = None
) -> tuple[str, str]:
    data = make_zip(FILES)
    key = "proj-1/dep-1.zip"
    await b.store.put(key, data)
    if record:
        sha256 = recorded_sha256 or sha256_hex(data)
        b.deployments.add(
            "proj-1",
            DeploymentCreated(
                deployment_id="dep-1",
                notes="",
                bundle=BundleRef(key=key, sha256=sha256, size=len(data)),
                requirements_sha256=None,
                skills=SKILLS,
            ),
        )
    return key, sha256_hex(data)


def _job(key: str, sha256: str, **kw: Any) -> RunJob:
    values: dict[str, Any] = {
        "job_id": "job-1",
        "project_id": "proj-1",
        "skill": "helper",
        "inputs": {},
        "deployment_id": "dep-1",
        "created_at": T0,
        "bundle_key": key,
        "bundle_sha256": sha256,
    }
    values.update(kw)
    return RunJob(**values)


async def _handle(b: Built, job: RunJob) -> FakeMsg:
    msg = FakeMsg(job)
    b.work.put(msg)
    await asyncio.wait_for(msg.handled.wait(), 10)
    return msg


async def test_a_work_item_runs_through_the_built_runner(built: Built) -> None:
    key, sha = await _deploy(built)
    msg = await _handle(built, _job(key, sha))
    assert msg.acked == 1
    assert built.log.types() == [
        "job.started",
        "job.agent_start",
        "job.model_response",
        "job.usage",
        "job.succeeded",
    ]
    (done,) = built.log.events(JobSucceeded)
    assert done.result == {"text": "Hello from the built runner."}
    # The bundle was fetched, checked and extracted under the runner's data dir.
    assert (built.app.settings.data_dir / "bundles" / "dep-1" / "skills" / "helper").is_dir()


async def test_the_skills_come_from_the_deployment_event_not_the_zip(built: Built) -> None:
    key, sha = await _deploy(built)
    # A skill the zip has but the deployment never recorded does not exist.
    msg = await _handle(built, _job(key, sha, skill="other"))
    assert msg.acked == 1
    (failed,) = built.log.events(JobFailed)
    assert failed.error == "skill 'other' is not in deployment dep-1; its skills: helper"


async def test_a_deployment_without_its_created_event_fails_the_job(built: Built) -> None:
    key, sha = await _deploy(built, record=False)
    await _handle(built, _job(key, sha))
    (failed,) = built.log.events(JobFailed)
    assert failed.error == (
        "could not prepare the deployment bundle: deployment dep-1 has no deployment.created "
        "event in the event log"
    )


async def test_the_bundle_hash_is_still_checked(built: Built) -> None:
    key, _ = await _deploy(built)
    await _handle(built, _job(key, "0" * 64))
    (failed,) = built.log.events(JobFailed)
    assert "sha256" in failed.error
    assert "the deployment recorded " + "0" * 64 in failed.error
    assert not (built.app.settings.data_dir / "bundles" / "dep-1").exists()


async def test_the_bytes_must_be_those_the_deployment_was_created_with(built: Built) -> None:
    key, sha = await _deploy(built, recorded_sha256="1" * 64)
    await _handle(built, _job(key, sha))
    (failed,) = built.log.events(JobFailed)
    assert failed.error == (
        f"could not prepare the deployment bundle: the work item names bundle sha256 {sha}, "
        f"deployment dep-1 was created with {'1' * 64}"
    )


async def test_closing_closes_what_the_runner_was_given(built: Built) -> None:
    key, sha = await _deploy(built)
    await _handle(built, _job(key, sha))
    await built.app.close()
    await built.app.close()
    assert built.closed == [True]
