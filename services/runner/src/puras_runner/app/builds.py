"""Push-time builds (Z7): a pushed deployment's venv, built before it may be activated.

A build request names a deployment; its ``deployment.created`` (folded from the
project's deployments subject) names the bundle. The venv is the one every job of the
deployment uses (keyed by the sha256 of ``requirements.txt``): one that exists already is
answered from (nothing is built). The outcome is recorded, then the activation the push
asked for, and only then is the request acked: a runner that dies in between leaves the
request to be redelivered, and the next one finds the outcome recorded and finishes the
activation. Every decision is made from the fold, so a repeat decides nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from puras_common.builds import BuildRequest
from puras_common.bus import ConcurrencyConflict
from puras_common.events.base import Event
from puras_common.events.ids import deployment_activated_id, deployment_build_outcome_id
from puras_common.events.types import (
    DeploymentActivated,
    DeploymentBuildFailed,
    DeploymentBuilt,
)
from puras_common.logging import get_logger
from puras_common.views.deployments import DeploymentInfo, ProjectDeployments
from puras_runner.app.ports import Deployment
from puras_runner.domain.errors import PreparationFailed

__all__ = ["BuildTarget", "DeploymentBuilds", "DeploymentFacts"]

log = get_logger(__name__)

MAX_CONFLICTS: Final = 20
"""Appends retried after the subject moved on (a busy project's pushes and rollbacks)."""


class DeploymentFacts(Protocol):
    """A project's deployments subject: its fold, and guarded appends to it."""

    async def fold(self, project_id: str) -> ProjectDeployments: ...

    async def append(
        self, event: Event, *, project_id: str, event_id: str, expected_seq: int
    ) -> int:
        """Raises :class:`ConcurrencyConflict` when the subject is past ``expected_seq``."""
        ...


class Bundles(Protocol):
    async def get(self, job: BuildTarget) -> Deployment: ...


class Venvs(Protocol):
    def has(self, requirements: bytes | None) -> bool:
        """Whether the venv of these requirements is built in this runner's store."""
        ...

    async def ensure(self, bundle_root: Path, project_id: str) -> object:
        """Build (or find) the venv; raises ``VenvBuildFailed`` with uv's output."""
        ...


@dataclass(frozen=True, slots=True)
class BuildTarget:
    """What the bundle cache needs to fetch a deployment's bundle."""

    project_id: str
    deployment_id: str
    bundle_key: str
    bundle_sha256: str


class DeploymentBuilds:
    def __init__(
        self,
        *,
        facts: DeploymentFacts,
        bundles: Bundles,
        venvs: Venvs,
        build_failed: type[Exception],
    ) -> None:
        self._facts = facts
        self._bundles = bundles
        self._venvs = venvs
        self._build_failed = build_failed

    async def handle(self, req: BuildRequest) -> bool:
        """Build, record the outcome, activate if asked; returns when all is recorded.

        ``False``: the log has no such deployment (yet: the gateway asks before it records
        ``deployment.created``, so that no recorded deployment lacks its request; or any
        more: it was deleted); the caller tries again later, a bounded number of times."""
        pd = await self._facts.fold(req.project_id)
        info = pd.deployments.get(req.deployment_id)
        if info is None:
            return False
        if info.status == "building":
            outcome = await self._build(info)
            pd = await self._record(req, outcome)
        await self._activate(req, pd)
        return True

    async def _build(self, info: DeploymentInfo) -> Event:
        target = BuildTarget(
            project_id=info.project_id,
            deployment_id=info.id,
            bundle_key=info.bundle.key,
            bundle_sha256=info.bundle.sha256,
        )
        try:
            dep = await self._bundles.get(target)
        except PreparationFailed as exc:
            return DeploymentBuildFailed(deployment_id=info.id, error=str(exc))
        req_file = dep.root / "requirements.txt"
        requirements = req_file.read_bytes() if req_file.is_file() else None
        reused = self._venvs.has(requirements)
        try:
            await self._venvs.ensure(dep.root, info.project_id)
        except self._build_failed as exc:
            log.info("deployment build failed", deployment_id=info.id, error=str(exc)[:200])
            return DeploymentBuildFailed(deployment_id=info.id, error=str(exc))
        log.info("deployment built", deployment_id=info.id, reused=reused)
        return DeploymentBuilt(
            deployment_id=info.id, venv_key=info.requirements_sha256 or "base", reused=reused
        )

    async def _record(self, req: BuildRequest, outcome: Event) -> ProjectDeployments:
        for _ in range(MAX_CONFLICTS):
            pd = await self._facts.fold(req.project_id)
            info = pd.deployments.get(req.deployment_id)
            if info is None or info.status != "building":
                return pd  # recorded already (a redelivery), or deleted meanwhile
            try:
                await self._facts.append(
                    outcome,
                    project_id=req.project_id,
                    event_id=deployment_build_outcome_id(req.deployment_id),
                    expected_seq=pd.subject_seq,
                )
            except ConcurrencyConflict:
                continue
            return await self._facts.fold(req.project_id)
        raise ConcurrencyConflict(f"deployments of project {req.project_id} keep changing")

    async def _activate(self, req: BuildRequest, pd: ProjectDeployments) -> None:
        for _ in range(MAX_CONFLICTS):
            info = pd.deployments.get(req.deployment_id)
            if info is None or info.status != "ready" or not info.activate_pending:
                return
            try:
                await self._facts.append(
                    DeploymentActivated(deployment_id=info.id, previous_id=pd.active_id),
                    project_id=req.project_id,
                    event_id=deployment_activated_id(info.id, pd.subject_seq),
                    expected_seq=pd.subject_seq,
                )
            except ConcurrencyConflict:
                pd = await self._facts.fold(req.project_id)
                continue
            log.info("deployment activated after its build", deployment_id=info.id)
            return
        raise ConcurrencyConflict(f"deployments of project {req.project_id} keep changing")
