"""Z7: a runner's handling of a push-time build request, over fakes of its ports."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from puras_common.builds import BuildRequest
from puras_common.bus import ConcurrencyConflict
from puras_common.events import (
    AnyEvent,
    BundleRef,
    DeploymentActivated,
    DeploymentBuildFailed,
    DeploymentBuilt,
    DeploymentCreated,
    Envelope,
)
from puras_common.events.base import Event
from puras_common.projection.base import RecordedEvent
from puras_common.views.deployments import DeploymentsView, ProjectDeployments
from puras_runner.adapters.venvs import VenvBuildFailed, scrub_host_paths
from puras_runner.app.builds import BuildTarget, DeploymentBuilds
from puras_runner.app.ports import Deployment

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REQ = BuildRequest(project_id="p", deployment_id="d1")


class Log:
    """The project's deployments subject; appends are guarded by its sequence."""

    def __init__(self, *events: AnyEvent) -> None:
        self.events: list[Event] = list(events)
        self.conflicts = 0

    async def fold(self, project_id: str) -> ProjectDeployments:
        v = DeploymentsView()
        for i, ev in enumerate(self.events, start=1):
            env = Envelope(
                id=f"e{i}", type=type(ev).type, v=1, at=T0, project_id="p", aggregate_id="p"
            )
            v.apply(RecordedEvent(seq=i, subject="ev.p.deployments.p", envelope=env, event=ev))  # type: ignore[arg-type]
        return v.project(project_id)

    async def append(
        self, event: Event, *, project_id: str, event_id: str, expected_seq: int
    ) -> int:
        if self.conflicts:
            self.conflicts -= 1
            raise ConcurrencyConflict("moved on")
        if expected_seq != len(self.events):
            raise ConcurrencyConflict("moved on")
        self.events.append(event)
        return len(self.events)


class Bundles:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def get(self, job: BuildTarget) -> Deployment:
        return Deployment(id=job.deployment_id, root=self.root, skills={})


class Venvs:
    def __init__(self, *, built: bool = False, error: str | None = None) -> None:
        self.built = built
        self.error = error
        self.builds = 0

    def has(self, requirements: bytes | None) -> bool:
        return self.built

    async def ensure(self, bundle_root: Path, project_id: str) -> object:
        if self.error is not None:
            raise VenvBuildFailed(self.error)
        if not self.built:
            self.builds += 1
            self.built = True
        return object()


def created(activate: bool = True) -> DeploymentCreated:
    return DeploymentCreated(
        deployment_id="d1",
        notes="",
        bundle=BundleRef(key="p/d1.zip", sha256="x", size=1),
        requirements_sha256="ab" * 32,
        skills=[],
        build=True,
        activate_when_built=activate,
    )


def builds(log: Log, venvs: Venvs, tmp_path: Path) -> DeploymentBuilds:
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    return DeploymentBuilds(
        facts=log, bundles=Bundles(tmp_path), venvs=venvs, build_failed=VenvBuildFailed
    )


async def test_a_build_records_built_then_the_activation_asked_for(tmp_path: Path) -> None:
    log, venvs = Log(created()), Venvs()
    await builds(log, venvs, tmp_path).handle(REQ)
    assert [type(e) for e in log.events] == [
        DeploymentCreated,
        DeploymentBuilt,
        DeploymentActivated,
    ]
    built = log.events[1]
    assert isinstance(built, DeploymentBuilt)
    assert built.reused is False
    assert venvs.builds == 1


async def test_an_existing_venv_is_reused_without_a_build(tmp_path: Path) -> None:
    log, venvs = Log(created(activate=False)), Venvs(built=True)
    await builds(log, venvs, tmp_path).handle(REQ)
    assert venvs.builds == 0
    assert [type(e) for e in log.events] == [DeploymentCreated, DeploymentBuilt]
    built = log.events[1]
    assert isinstance(built, DeploymentBuilt)
    assert built.reused is True


async def test_a_failed_build_is_recorded_and_never_activated(tmp_path: Path) -> None:
    log = Log(created())
    await builds(log, Venvs(error="uv: no solution"), tmp_path).handle(REQ)
    assert [type(e) for e in log.events] == [DeploymentCreated, DeploymentBuildFailed]
    failed = log.events[1]
    assert isinstance(failed, DeploymentBuildFailed)
    assert failed.error == "uv: no solution"


async def test_a_redelivery_after_a_crash_finishes_the_activation_once(tmp_path: Path) -> None:
    # The runner died after recording the build and before activating.
    log = Log(created(), DeploymentBuilt(deployment_id="d1", venv_key="ab" * 32))
    venvs = Venvs()
    b = builds(log, venvs, tmp_path)
    await b.handle(REQ)
    await b.handle(REQ)
    assert [type(e) for e in log.events] == [
        DeploymentCreated,
        DeploymentBuilt,
        DeploymentActivated,
    ]
    assert venvs.builds == 0


async def test_a_concurrent_change_is_folded_again_before_deciding(tmp_path: Path) -> None:
    log = Log(created())
    log.conflicts = 2
    await builds(log, Venvs(), tmp_path).handle(REQ)
    assert [type(e) for e in log.events] == [
        DeploymentCreated,
        DeploymentBuilt,
        DeploymentActivated,
    ]


async def test_an_activation_made_since_the_push_wins(tmp_path: Path) -> None:
    other = DeploymentCreated(
        deployment_id="d2",
        notes="",
        bundle=BundleRef(key="p/d2.zip", sha256="y", size=1),
        requirements_sha256=None,
        skills=[],
    )
    log = Log(created(), other, DeploymentActivated(deployment_id="d2"))
    await builds(log, Venvs(), tmp_path).handle(REQ)
    assert type(log.events[-1]) is DeploymentBuilt


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Using environment at: /data/venvs/.tmp-abc-123", "Using environment at: /venv"),
        ("reading /data/bundles/d1/requirements.txt", "reading requirements.txt"),
        ("cache /data/uv-cache/x", "cache <uv cache>/x"),
        ("see /tmp/pytest-1/file.log: bad", "see <tmp>: bad"),
    ],
)
def test_build_errors_carry_no_host_paths(text: str, shown: str) -> None:
    known = {
        "/data/venvs/.tmp-abc-123": "/venv",
        "/data/bundles/d1/requirements.txt": "requirements.txt",
        "/data/uv-cache": "<uv cache>",
        "/data/venvs": "<venvs>",
        "/data": "<data dir>",
    }
    assert scrub_host_paths(text, known) == shown


async def test_a_request_for_a_deployment_not_in_the_log_is_not_handled(tmp_path: Path) -> None:
    # The gateway asks just before it records the deployment: the caller looks again later.
    log, venvs = Log(), Venvs()
    assert await builds(log, venvs, tmp_path).handle(REQ) is False
    assert (log.events, venvs.builds) == ([], 0)
