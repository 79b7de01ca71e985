"""Z7: a runner's handling of a push-time build request, over fakes of its ports: it
builds (or finds) the venv and reports the outcome; the gateways record it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from puras_common.builds import BuildOutcome, BuildRequest
from puras_common.events import (
    AnyEvent,
    BundleRef,
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
    """The project's deployments subject, as the runner reads it (it never writes it)."""

    def __init__(self, *events: AnyEvent) -> None:
        self.events: list[Event] = list(events)

    async def fold(self, project_id: str) -> ProjectDeployments:
        v = DeploymentsView()
        for i, ev in enumerate(self.events, start=1):
            env = Envelope(
                id=f"e{i}", type=type(ev).type, v=1, at=T0, project_id="p", aggregate_id="p"
            )
            v.apply(RecordedEvent(seq=i, subject="ev.p.deployments.p", envelope=env, event=ev))  # type: ignore[arg-type]
        return v.project(project_id)


class Reports:
    """The gateways' side of the report: what the runner said about each build."""

    def __init__(self) -> None:
        self.sent: list[BuildOutcome] = []

    async def report(self, outcome: BuildOutcome) -> None:
        self.sent.append(outcome)


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


def builds(log: Log, venvs: Venvs, tmp_path: Path, reports: Reports) -> DeploymentBuilds:
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    return DeploymentBuilds(
        facts=log,
        outcomes=reports,
        bundles=Bundles(tmp_path),
        venvs=venvs,
        build_failed=VenvBuildFailed,
    )


async def test_a_build_is_reported_to_the_gateways_and_written_nowhere(tmp_path: Path) -> None:
    log, venvs, reports = Log(created()), Venvs(), Reports()
    assert await builds(log, venvs, tmp_path, reports).handle(REQ) is True
    assert reports.sent == [
        BuildOutcome(project_id="p", deployment_id="d1", venv_key="ab" * 32, reused=False)
    ]
    assert venvs.builds == 1
    assert [type(e) for e in log.events] == [DeploymentCreated]


async def test_an_existing_venv_is_reused_without_a_build(tmp_path: Path) -> None:
    log, venvs, reports = Log(created(activate=False)), Venvs(built=True), Reports()
    await builds(log, venvs, tmp_path, reports).handle(REQ)
    assert venvs.builds == 0
    assert [o.reused for o in reports.sent] == [True]


async def test_a_failed_build_is_reported_with_uvs_message(tmp_path: Path) -> None:
    reports = Reports()
    await builds(Log(created()), Venvs(error="uv: no solution"), tmp_path, reports).handle(REQ)
    assert [(o.error, o.reused) for o in reports.sent] == [("uv: no solution", False)]


async def test_a_request_whose_outcome_is_recorded_needs_nothing_more(tmp_path: Path) -> None:
    # Redelivered after the gateway recorded the report: no build, no second report.
    log = Log(created(), DeploymentBuilt(deployment_id="d1", venv_key="ab" * 32))
    venvs, reports = Venvs(), Reports()
    assert await builds(log, venvs, tmp_path, reports).handle(REQ) is True
    assert (venvs.builds, reports.sent) == (0, [])


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
    log, venvs, reports = Log(), Venvs(), Reports()
    assert await builds(log, venvs, tmp_path, reports).handle(REQ) is False
    assert (log.events, venvs.builds, reports.sent) == ([], 0, [])
