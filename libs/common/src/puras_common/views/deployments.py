"""Deployments of every project: which exist, their skills, which one is active.

A pure fold over ``deployment.*`` events. The gateway validates submits against it, the
scheduler pins jobs with it, the runner reads bundle refs from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import assert_never

from puras_common.events.recorded import RecordedEvent
from puras_common.events.types import (
    BundleRef,
    DeploymentActivated,
    DeploymentCreated,
    DeploymentDeleted,
    DeploymentEvent,
    SkillRecord,
)

__all__ = ["DeploymentInfo", "DeploymentsView", "ProjectDeployments"]


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    id: str
    project_id: str
    notes: str
    bundle: BundleRef
    requirements_sha256: str | None
    skills: dict[str, SkillRecord]
    created_at: datetime


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
                )
            case DeploymentActivated():
                if ev.deployment_id in pd.deployments:
                    pd.active_id = ev.deployment_id
            case DeploymentDeleted():
                pd.deployments.pop(ev.deployment_id, None)
                if pd.active_id == ev.deployment_id:
                    pd.active_id = None
            case _:
                assert_never(ev)
