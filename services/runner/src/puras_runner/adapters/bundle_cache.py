"""Deployment bundles on this machine: ``<data_dir>/bundles/<deployment_id>/``.

On a deployment's first job in this process the zip is fetched from the bundle store by
``RunJob.bundle_key``, checked against ``bundle_sha256``, validated (the skill manifests
are what tell the runner each skill's entrypoint, output schema and timeout) and, unless
an earlier run already did, extracted. Extraction is atomic (``extract_bundle`` renames a
finished temporary folder into place), so a folder that exists is complete; concurrent
jobs of one deployment wait for the same load. A failed load is not remembered.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from puras_common.bundles import BundleNotFound, BundleStore
from puras_common.events.commands import RunJob
from puras_common.logging import get_logger
from puras_common.manifest import BundleInvalid, SkillSpec, extract_bundle, validate_bundle
from puras_runner.domain import errors
from puras_runner.domain.jobs import safe_token

__all__ = ["BundleCache", "BundleUnusable", "Deployment"]

log = get_logger(__name__)


class BundleUnusable(Exception):
    """The deployment's bundle cannot be used; ``str()`` is the job's error."""


@dataclass(frozen=True, slots=True)
class Deployment:
    id: str
    root: Path
    """The extracted bundle (the deployment root)."""
    skills: dict[str, SkillSpec]


class BundleCache:
    def __init__(self, store: BundleStore, root: Path) -> None:
        self._store = store
        self.root = root
        self._ready: dict[str, Deployment] = {}
        self._loading: dict[str, asyncio.Task[Deployment]] = {}

    def cached(self, deployment_id: str) -> Deployment | None:
        return self._ready.get(deployment_id)

    async def get(self, job: RunJob) -> Deployment:
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

    async def _load(self, job: RunJob) -> Deployment:
        dest = self.root / safe_token("deployment id", job.deployment_id)
        try:
            data = await self._store.get(job.bundle_key)
        except BundleNotFound:
            raise BundleUnusable(
                errors.bundle_error(
                    f"bundle {job.bundle_key!r} is not in the bundle store (was the deployment "
                    "deleted?)"
                )
            ) from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != job.bundle_sha256:
            raise BundleUnusable(
                errors.bundle_error(
                    f"bundle {job.bundle_key!r} has sha256 {digest}, the deployment recorded "
                    f"{job.bundle_sha256}"
                )
            )
        try:
            validated = await asyncio.to_thread(validate_bundle, data)
        except BundleInvalid as exc:
            raise BundleUnusable(errors.bundle_error(str(exc))) from None
        if not dest.is_dir():
            try:
                await asyncio.to_thread(extract_bundle, data, dest)
                log.info(
                    "bundle extracted",
                    deployment_id=job.deployment_id,
                    path=str(dest),
                    files=validated.file_count,
                )
            except FileExistsError:
                pass  # another runner sharing this data dir extracted it first
            except BundleInvalid as exc:
                raise BundleUnusable(errors.bundle_error(str(exc))) from None
        return Deployment(
            id=job.deployment_id,
            root=dest,
            skills={s.name: s for s in validated.skills},
        )
