"""Z7 at the gateway: a push with requirements.txt waits for the runners' build outcome,
answers 422 ``build_failed`` for a failed build, and never activates what is not ready."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gateway_fakes import FakeReadViews

from puras_bundle import pack_project
from puras_common.builds import BuildOutcome
from puras_common.bus import ConcurrencyConflict
from puras_common.bus.client import Published
from puras_common.events import (
    DeploymentActivated,
    DeploymentBuildFailed,
    DeploymentBuilt,
    Envelope,
)
from puras_common.events.base import Event
from puras_common.projection.base import RecordedEvent
from puras_common.views.deployments import DeploymentsView
from puras_common.views.keys import KeysView
from puras_gateway.app.auth import Principal
from puras_gateway.app.deployments import DeploymentsService
from puras_gateway.domain.errors import ApiError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
P = Principal(project_id="p", key_prefix="abcd1234")


class Log:
    """The event log and the live views it feeds (applied as soon as appended)."""

    def __init__(self) -> None:
        self.keys = KeysView()
        self.deployments = DeploymentsView()
        self.seq = 0
        self.events: list[Event] = []

    async def append(self, event: Event, **kw: Any) -> Published:
        expected = kw.get("expected_last_subject_seq")
        if expected is not None and expected != self.seq:
            raise ConcurrencyConflict("the subject moved on")
        self.events.append(event)
        self.seq += 1
        env = Envelope(
            id=f"e{self.seq}", type=type(event).type, v=1, at=T0, project_id="p", aggregate_id="p"
        )
        rec = RecordedEvent(seq=self.seq, subject="ev.p.deployments.p", envelope=env, event=event)  # type: ignore[arg-type]
        self.deployments.apply(rec)
        return Published(seq=self.seq, duplicate=False, subject=rec.subject)

    async def last_subject_seq(self, subject: str) -> int:
        return self.seq

    async def wait_for(self, *args: Any) -> bool:
        return True


class Runner:
    """Takes build requests as a runner would: reports the outcome a moment later (to the
    service, as the gateways' consumer of the reports hands it on), or, with ``idle``,
    not at all."""

    def __init__(self, log: Log, *, error: str | None = None, idle: bool = False) -> None:
        self.log, self.error, self.idle = log, error, idle
        self.requests: list[str] = []
        self.service: DeploymentsService | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def request(self, project_id: str, deployment_id: str) -> None:
        self.requests.append(deployment_id)
        if not self.idle:
            task = asyncio.create_task(self._build(deployment_id))
            self._tasks.add(task)

    async def _build(self, dep_id: str) -> None:
        await asyncio.sleep(0)
        assert self.service is not None
        assert await self.service.record_build(outcome(dep_id, self.error))


def outcome(dep_id: str, error: str | None = None) -> BuildOutcome:
    return BuildOutcome(project_id="p", deployment_id=dep_id, venv_key="k", error=error)


class Store:
    async def put(self, key: str, data: bytes) -> None:
        return None

    async def get(self, key: str) -> bytes:
        raise AssertionError("not read")

    async def delete(self, key: str) -> None:
        return None


def bundle(tmp_path: Path, requirements: str | None) -> bytes:
    skill = tmp_path / "proj" / "skills" / "echo"
    skill.mkdir(parents=True)
    (skill / "skill.yaml").write_text("description: Echo.\nentrypoint: main.py:run\n")
    (skill / "main.py").write_text("def run(inputs):\n    return inputs\n")
    if requirements is not None:
        (tmp_path / "proj" / "requirements.txt").write_text(requirements)
    return pack_project(tmp_path / "proj").data


def service(log: Log, runner: Runner, build_wait_s: float = 5.0) -> DeploymentsService:
    runner.service = svc = DeploymentsService(
        bus=log,
        store=Store(),
        views=log,
        reads=FakeReadViews(),
        watcher=log,
        wait_s=0.01,
        builds=runner,
        build_wait_s=build_wait_s,
    )
    return svc


async def test_without_requirements_nothing_is_built(tmp_path: Path) -> None:
    log = Log()
    runner = Runner(log)
    out = await service(log, runner).create(P, bundle(tmp_path, None), "", True)
    assert (out["status"], out["error"], out["active"]) == ("ready", None, True)
    assert runner.requests == []


async def test_the_push_waits_for_the_build_and_its_activation(tmp_path: Path) -> None:
    log = Log()
    runner = Runner(log)
    out = await service(log, runner).create(P, bundle(tmp_path, "six==1.16.0\n"), "", True)
    assert (out["status"], out["active"]) == ("ready", True)
    assert runner.requests == [out["id"]]


async def test_a_failed_build_is_422_and_never_active(tmp_path: Path) -> None:
    log = Log()
    svc = service(log, Runner(log, error="uv: no solution for puras-no-such-package-xyz"))
    with pytest.raises(ApiError) as caught:
        await svc.create(P, bundle(tmp_path, "puras-no-such-package-xyz==1.0\n"), "", True)
    err = caught.value
    assert (err.status, err.code) == (422, "build_failed")
    assert "puras-no-such-package-xyz" in err.message
    dep = err.extra["deployment"]
    assert (dep["status"], dep["active"]) == ("failed", False)
    assert log.deployments.project("p").active_id is None
    with pytest.raises(ApiError) as refused:
        await svc.activate(P, dep["id"])
    assert (refused.value.status, refused.value.code) == (409, "deployment_build_failed")
    assert "build failed" in refused.value.message


async def test_an_async_push_answers_building_and_cannot_be_activated_yet(
    tmp_path: Path,
) -> None:
    log = Log()
    svc = service(log, Runner(log, idle=True))
    out = await svc.create(P, bundle(tmp_path, "six==1.16.0\n"), "", True, wait=False)
    assert (out["status"], out["active"]) == ("building", False)
    with pytest.raises(ApiError) as refused:
        await svc.activate(P, out["id"])
    assert (refused.value.status, refused.value.code) == (409, "deployment_not_ready")
    assert "still building" in refused.value.message


async def test_a_build_longer_than_the_wait_answers_building(tmp_path: Path) -> None:
    log = Log()
    svc = service(log, Runner(log, idle=True), build_wait_s=0.05)
    out = await svc.create(P, bundle(tmp_path, "six==1.16.0\n"), "", True)
    assert (out["status"], out["active"]) == ("building", False)


async def test_a_redelivered_report_records_nothing_twice(tmp_path: Path) -> None:
    log = Log()
    svc = service(log, Runner(log, idle=True))
    out = await svc.create(P, bundle(tmp_path, "six==1.16.0\n"), "", True, wait=False)
    for _ in range(3):
        assert await svc.record_build(outcome(out["id"])) is True
    assert [type(e) for e in log.events][1:] == [DeploymentBuilt, DeploymentActivated]
    assert log.deployments.project("p").active_id == out["id"]


async def test_an_activation_made_since_the_push_wins(tmp_path: Path) -> None:
    log = Log()
    svc = service(log, Runner(log, idle=True))
    built_later = await svc.create(P, bundle(tmp_path / "a", "six==1.16.0\n"), "", True, wait=False)
    chosen = await svc.create(P, bundle(tmp_path / "b", None), "", True)
    assert await svc.record_build(outcome(built_later["id"])) is True
    assert log.deployments.project("p").active_id == chosen["id"]
    assert type(log.events[-1]) is DeploymentBuilt


async def test_a_failed_report_is_recorded_and_never_activated(tmp_path: Path) -> None:
    log = Log()
    svc = service(log, Runner(log, idle=True))
    out = await svc.create(P, bundle(tmp_path, "nope==1\n"), "", True, wait=False)
    assert await svc.record_build(outcome(out["id"], "uv: no solution")) is True
    failed = log.events[-1]
    assert isinstance(failed, DeploymentBuildFailed)
    assert failed.error == "uv: no solution"
    assert log.deployments.project("p").active_id is None


async def test_a_report_of_a_deployment_not_shown_is_left_for_later() -> None:
    log = Log()
    svc = service(log, Runner(log, idle=True))
    assert await svc.record_build(outcome("not-yet")) is False
    assert log.events == []
