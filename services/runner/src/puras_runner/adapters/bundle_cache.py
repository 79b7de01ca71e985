"""Deployment bundles on this machine: ``<data_dir>/bundles/<deployment_id>/``.

On a deployment's first job in this process its skills are read from the event log
(the ``DeploymentCreated`` the gateway appended after validating the bundle once: the
runner does not validate it again), the zip is fetched from the bundle store by
``RunJob.bundle_key`` and checked against ``bundle_sha256`` (which must be the hash the
deployment was created with: the skills were validated from those bytes), and, unless an earlier run
already did, extracted (``extract_bundle`` applies its own safety checks to every
member). Extraction is atomic (a finished temporary folder is renamed into place), so a
folder that exists is complete; concurrent jobs of one deployment wait for the same
load. A failed load is not remembered. Every engine uses the same cache.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from puras_common.bundles import BundleNotFound, BundleStore
from puras_common.logging import get_logger
from puras_common.manifest import BundleInvalid, extract_bundle
from puras_runner.app.ports import Deployment, DeploymentLog
from puras_runner.domain import errors
from puras_runner.domain.errors import PreparationFailed
from puras_runner.domain.jobs import safe_token

__all__ = ["BundleCache", "BundleTarget"]

log = get_logger(__name__)


class BundleTarget(Protocol):
    """Which bundle to load: a job's work item, or a push-time build's request (Z7)."""

    @property
    def project_id(self) -> str: ...
    @property
    def deployment_id(self) -> str: ...
    @property
    def bundle_key(self) -> str: ...
    @property
    def bundle_sha256(self) -> str: ...


class BundleCache:
    """:class:`~puras_runner.app.ports.Deployments` over the bundle store and the log."""

    def __init__(self, store: BundleStore, deployment_log: DeploymentLog, root: Path) -> None:
        self._store = store
        self._deployment_log = deployment_log
        self.root = root
        self._ready: dict[str, Deployment] = {}
        self._loading: dict[str, asyncio.Task[Deployment]] = {}

    def cached(self, deployment_id: str) -> Deployment | None:
        return self._ready.get(deployment_id)

    async def get(self, job: BundleTarget) -> Deployment:
        dep = self._ready.get(job.deployment_id)
        if dep is not None:
            return dep
        task = self._loading.get(job.deployment_id)
        if task is None:
            task = asyncio.create_task(self._load(job))
            self._loading[job.deployment_id] = task
            task.add_done_callback(self._forget(job.deployment_id))
        dep = await asyncio.shield(task)
        self._ready[job.deployment_id] = dep
        return dep

    def _forget(self, deployment_id: str) -> Callable[[asyncio.Task[Deployment]], None]:
        def forget(_task: asyncio.Task[Deployment]) -> None:
            # Loaded or failed: either way the next job looks again (a failure is retried).
            self._loading.pop(deployment_id, None)

        return forget

    async def _load(self, job: BundleTarget) -> Deployment:
        dest = self.root / safe_token("deployment id", job.deployment_id)
        created = await self._deployment_log.created(job.project_id, job.deployment_id)
        if created is None:
            raise PreparationFailed(
                errors.bundle_error(
                    f"deployment {job.deployment_id} has no deployment.created event in the "
                    "event log"
                )
            )
        try:
            data = await self._store.get(job.bundle_key)
        except BundleNotFound:
            raise PreparationFailed(
                errors.bundle_error(
                    f"bundle {job.bundle_key!r} is not in the bundle store (was the deployment "
                    "deleted?)"
                )
            ) from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != job.bundle_sha256:
            raise PreparationFailed(
                errors.bundle_error(
                    f"bundle {job.bundle_key!r} has sha256 {digest}, the deployment recorded "
                    f"{job.bundle_sha256}"
                )
            )
        if created.bundle.sha256 != job.bundle_sha256:
            # The skills below were validated from the deployment's own bytes only.
            raise PreparationFailed(
                errors.bundle_error(
                    f"the work item names bundle sha256 {job.bundle_sha256}, deployment "
                    f"{job.deployment_id} was created with {created.bundle.sha256}"
                )
            )
        if not dest.is_dir():
            try:
                await asyncio.to_thread(extract_bundle, data, dest)
                log.info("bundle extracted", deployment_id=job.deployment_id, path=str(dest))
            except FileExistsError:
                pass  # another runner sharing this data dir extracted it first
            except BundleInvalid as exc:
                raise PreparationFailed(errors.bundle_error(str(exc))) from None
        return Deployment(
            id=job.deployment_id, root=dest, skills={s.name: s for s in created.skills}
        )
