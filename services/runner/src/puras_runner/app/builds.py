"""Push-time builds (Z7): a pushed deployment's venv, built before it may be activated.

A build request names a deployment; its ``deployment.created`` (folded from the
project's deployments subject) names the bundle. The venv is the one every job of the
deployment uses (keyed by the sha256 of ``requirements.txt``): one that exists already is
answered from (nothing is built). The outcome is reported to the gateways, which record
it and the activation the push asked for (deployment facts have one writer), and only
then is the request acked: a runner that dies in between leaves the request to be
redelivered, and the next one reports again (the report's message id deduplicates it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from puras_common.builds import BuildOutcome, BuildRequest
from puras_common.logging import get_logger
from puras_common.views.deployments import DeploymentInfo, ProjectDeployments
from puras_runner.app.ports import Deployment
from puras_runner.domain.errors import PreparationFailed

__all__ = ["BuildOutcomes", "BuildTarget", "DeploymentBuilds", "DeploymentFacts"]

log = get_logger(__name__)


class DeploymentFacts(Protocol):
    """A project's deployments subject, folded (read only: the gateway writes it)."""

    async def fold(self, project_id: str) -> ProjectDeployments: ...


class BuildOutcomes(Protocol):
    """Where a build's outcome goes: to the gateways, which record it."""

    async def report(self, outcome: BuildOutcome) -> None:
        """Returns once the report is stored (JetStream acknowledged it)."""
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
        outcomes: BuildOutcomes,
        bundles: Bundles,
        venvs: Venvs,
        build_failed: type[Exception],
    ) -> None:
        self._facts = facts
        self._outcomes = outcomes
        self._bundles = bundles
        self._venvs = venvs
        self._build_failed = build_failed

    async def handle(self, req: BuildRequest) -> bool:
        """Build (or find) the venv and report the outcome; returns once it is reported.

        ``False``: the log has no such deployment (yet: the gateway asks before it records
        ``deployment.created``, so that no recorded deployment lacks its request; or any
        more: it was deleted); the caller tries again later, a bounded number of times.
        A deployment whose outcome is recorded already needs nothing more: the gateway
        recorded it from a report, and finishes the activation from that report's
        redelivery if it died before."""
        pd = await self._facts.fold(req.project_id)
        info = pd.deployments.get(req.deployment_id)
        if info is None:
            return False
        if info.status != "building":
            return True
        outcome = await self._build(info)
        await self._outcomes.report(outcome)
        return True

    async def _build(self, info: DeploymentInfo) -> BuildOutcome:
        target = BuildTarget(
            project_id=info.project_id,
            deployment_id=info.id,
            bundle_key=info.bundle.key,
            bundle_sha256=info.bundle.sha256,
        )
        key = info.requirements_sha256 or "base"
        try:
            dep = await self._bundles.get(target)
        except PreparationFailed as exc:
            return BuildOutcome(
                project_id=info.project_id, deployment_id=info.id, venv_key=key, error=str(exc)
            )
        req_file = dep.root / "requirements.txt"
        requirements = req_file.read_bytes() if req_file.is_file() else None
        reused = self._venvs.has(requirements)
        try:
            await self._venvs.ensure(dep.root, info.project_id)
        except self._build_failed as exc:
            log.info("deployment build failed", deployment_id=info.id, error=str(exc)[:200])
            return BuildOutcome(
                project_id=info.project_id, deployment_id=info.id, venv_key=key, error=str(exc)
            )
        log.info("deployment built", deployment_id=info.id, reused=reused)
        return BuildOutcome(
            project_id=info.project_id, deployment_id=info.id, venv_key=key, reused=reused
        )
