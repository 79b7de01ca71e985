"""Deployments of every project: which exist, their skills, which one is active.

A pure fold over ``deployment.*`` events. The gateway validates submits against it, the
scheduler pins jobs with it, the runner reads bundle refs from it.

Z7: a deployment with a ``requirements.txt`` is ``building`` until a runner records
``deployment.built`` (``ready``) or ``deployment.build_failed`` (``failed``, with the
error); one without is ``ready`` at once. A push that asked for activation leaves the
deployment ``activate_pending`` until it is activated, or until another deployment is
activated after it (the later choice wins).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, assert_never

from puras_common.events.recorded import RecordedEvent
from puras_common.events.types import (
    BundleRef,
    DeploymentActivated,
    DeploymentBuildFailed,
    DeploymentBuilt,
    DeploymentCreated,
    DeploymentDeleted,
    DeploymentEvent,
    SkillRecord,
)

__all__ = ["BuildStatus", "DeploymentInfo", "DeploymentsView", "ProjectDeployments"]

BuildStatus = Literal["building", "ready", "failed"]


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    id: str
    project_id: str
    notes: str
    bundle: BundleRef
    requirements_sha256: str | None
    skills: dict[str, SkillRecord]
    created_at: datetime
    status: BuildStatus = "ready"
    error: str | None = None
    """The build's error when ``failed``, else ``None``."""
    activate_pending: bool = False
    """Activate it once it is built (the push asked, nothing was activated since)."""


@dataclass(slots=True)
class ProjectDeployments:
    deployments: dict[str, DeploymentInfo] = field(default_factory=dict)
    active_id: str | None = None
    subject_seq: int = 0
    """Sequence of the last event on the project's deployments subject (for expected-seq)."""

    @property
    def active(self) -> DeploymentInfo | None:
        return self.deployments.get(self.active_id) if self.active_id else None


class DeploymentsView:
    """In-memory fold; ``apply`` is idempotent by stream sequence."""

    def __init__(self) -> None:
        self.projects: dict[str, ProjectDeployments] = {}
        self.last_seq = 0

    def project(self, project_id: str) -> ProjectDeployments:
        return self.projects.get(project_id) or ProjectDeployments()

    def get(self, project_id: str, deployment_id: str) -> DeploymentInfo | None:
        pd = self.projects.get(project_id)
        return pd.deployments.get(deployment_id) if pd else None

    def apply(self, rec: RecordedEvent) -> None:
        if rec.seq and rec.seq <= self.last_seq:
            return
        self.last_seq = max(self.last_seq, rec.seq)
        ev = rec.event
        pid = rec.envelope.project_id
        pd = self.projects.setdefault(pid, ProjectDeployments())
        pd.subject_seq = max(pd.subject_seq, rec.seq)
        if not isinstance(ev, DeploymentEvent):
            return  # a newer type (counted in subject_seq above) or another aggregate's
        match ev:
            case DeploymentCreated():
                pd.deployments[ev.deployment_id] = DeploymentInfo(
                    id=ev.deployment_id,
                    project_id=pid,
                    notes=ev.notes,
                    bundle=ev.bundle,
                    requirements_sha256=ev.requirements_sha256,
                    skills={s.name: s for s in ev.skills},
                    created_at=rec.envelope.at,
                    status="building" if ev.build else "ready",
                    activate_pending=ev.build and ev.activate_when_built,
                )
            case DeploymentBuilt():
                info = pd.deployments.get(ev.deployment_id)
                if info is not None and info.status == "building":
                    pd.deployments[ev.deployment_id] = replace(info, status="ready")
            case DeploymentBuildFailed():
                info = pd.deployments.get(ev.deployment_id)
                if info is not None and info.status == "building":
                    pd.deployments[ev.deployment_id] = replace(
                        info, status="failed", error=ev.error, activate_pending=False
                    )
            case DeploymentActivated():
                if ev.deployment_id in pd.deployments:
                    pd.active_id = ev.deployment_id
                    # Activated, or superseded by a later activation: nothing is pending.
                    for dep_id, info in list(pd.deployments.items()):
                        if info.activate_pending:
                            pd.deployments[dep_id] = replace(info, activate_pending=False)
            case DeploymentDeleted():
                pd.deployments.pop(ev.deployment_id, None)
                if pd.active_id == ev.deployment_id:
                    pd.active_id = None
            case _:
                assert_never(ev)
