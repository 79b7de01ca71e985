"""Z7: the deployments fold's build status, error and pending activation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from puras_common.events import (
    AnyEvent,
    BundleRef,
    DeploymentActivated,
    DeploymentBuildFailed,
    DeploymentBuilt,
    DeploymentCreated,
    Envelope,
)
from puras_common.projection.base import RecordedEvent
from puras_common.views.deployments import DeploymentsView

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rec(seq: int, ev: AnyEvent) -> RecordedEvent:
    env = Envelope(
        id=f"e{seq}",
        type=type(ev).type,
        v=1,
        at=T0 + timedelta(seconds=seq),
        project_id="p",
        aggregate_id="p",
    )
    return RecordedEvent(seq=seq, subject="ev.p.deployments.p", envelope=env, event=ev)


def created(dep: str, *, build: bool, activate: bool = False) -> DeploymentCreated:
    return DeploymentCreated(
        deployment_id=dep,
        notes="",
        bundle=BundleRef(key=f"p/{dep}.zip", sha256="x", size=1),
        requirements_sha256="ab" * 32 if build else None,
        skills=[],
        build=build,
        activate_when_built=activate,
    )


def fold(*events: AnyEvent) -> DeploymentsView:
    v = DeploymentsView()
    for i, ev in enumerate(events, start=1):
        v.apply(rec(i, ev))
    return v


def test_without_requirements_a_deployment_is_ready_at_once() -> None:
    info = fold(created("d1", build=False)).get("p", "d1")
    assert info is not None
    assert (info.status, info.error, info.activate_pending) == ("ready", None, False)


def test_a_deployment_recorded_before_push_time_builds_is_ready() -> None:
    # Old logs: requirements but no `build` field (decoded as False).
    old = DeploymentCreated(
        deployment_id="d1",
        notes="",
        bundle=BundleRef(key="p/d1.zip", sha256="x", size=1),
        requirements_sha256="cd" * 32,
        skills=[],
    )
    info = fold(old).get("p", "d1")
    assert info is not None
    assert info.status == "ready"


def test_building_then_built_is_ready_and_still_pending_activation() -> None:
    v = fold(created("d1", build=True, activate=True))
    info = v.get("p", "d1")
    assert info is not None
    assert (info.status, info.activate_pending) == ("building", True)
    v.apply(rec(2, DeploymentBuilt(deployment_id="d1", venv_key="ab" * 32)))
    info = v.get("p", "d1")
    assert info is not None
    assert (info.status, info.error, info.activate_pending) == ("ready", None, True)
    assert v.project("p").active_id is None
    v.apply(rec(3, DeploymentActivated(deployment_id="d1")))
    info = v.get("p", "d1")
    assert info is not None
    assert not info.activate_pending
    assert v.project("p").active_id == "d1"


def test_a_failed_build_keeps_its_error_and_is_never_pending() -> None:
    v = fold(
        created("d1", build=True, activate=True),
        DeploymentBuildFailed(deployment_id="d1", error="uv: no solution"),
    )
    info = v.get("p", "d1")
    assert info is not None
    assert (info.status, info.error, info.activate_pending) == ("failed", "uv: no solution", False)
    # A late second outcome (a redelivered request) changes nothing.
    v.apply(rec(3, DeploymentBuilt(deployment_id="d1", venv_key="ab" * 32)))
    again = v.get("p", "d1")
    assert again is not None
    assert again.status == "failed"


def test_a_later_activation_supersedes_a_pending_one() -> None:
    v = fold(
        created("d1", build=True, activate=True),
        created("d2", build=False),
        DeploymentActivated(deployment_id="d2"),
    )
    info = v.get("p", "d1")
    assert info is not None
    assert (info.status, info.activate_pending) == ("building", False)
    assert v.project("p").active_id == "d2"
