"""Deployment use cases (P1-P4): push, list, activate (rollback), delete; skills."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from puras_common.bundles import BundleStore, bundle_key, sha256_hex
from puras_common.bus import ConcurrencyConflict
from puras_common.events.ids import (
    deployment_activated_id,
    deployment_created_id,
    deployment_deleted_id,
)
from puras_common.events.subjects import AGG_DEPLOYMENTS, event_subject
from puras_common.events.types import (
    BundleRef,
    DeploymentActivated,
    DeploymentCreated,
    DeploymentDeleted,
    SkillRecord,
)
from puras_common.ids import new_id
from puras_common.manifest import BundleInvalid, RequirementsPolicy, validate_bundle
from puras_common.manifest.spec import SkillSpec
from puras_common.views.deployments import DeploymentInfo
from puras_gateway.app.auth import Principal
from puras_gateway.app.ports import EventLog, LiveViews, ProjectionWatch, ReadViews
from puras_gateway.domain.errors import ApiError

__all__ = ["DeploymentsService"]


def skill_record(spec: SkillSpec) -> SkillRecord:
    """The log's record of a validated skill (the same JSON, the events' own type)."""
    return msgspec.convert(msgspec.to_builtins(spec), SkillRecord)


def skill_summary(s: SkillRecord) -> dict[str, Any]:
    return {"name": s.name, "kind": s.kind, "description": s.description}


def skill_detail(s: SkillRecord) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(s)
    out["tools"] = [t["name"] for t in out.get("tools", [])]
    return out


def _deployment_out(d: DeploymentInfo, active: bool) -> dict[str, Any]:
    return {
        "id": d.id,
        "notes": d.notes,
        "created_at": d.created_at,
        "active": active,
        "bundle_size": d.bundle.size,
        "skills": [skill_summary(s) for s in sorted(d.skills.values(), key=lambda s: s.name)],
    }


class DeploymentsService:
    def __init__(
        self,
        *,
        bus: EventLog,
        store: BundleStore,
        views: LiveViews,
        reads: ReadViews,
        watcher: ProjectionWatch,
        wait_s: float,
        requirements: RequirementsPolicy = RequirementsPolicy(),  # noqa: B008 - frozen
    ) -> None:
        self._bus = bus
        self._requirements = requirements
        self._store = store
        self._views = views
        self._reads = reads
        self._watcher = watcher
        self._wait = wait_s

    async def create(self, p: Principal, data: bytes, notes: str, activate: bool) -> dict[str, Any]:
        try:
            # Zip inspection is CPU work on a possibly large upload: keep it off the loop.
            validated = await asyncio.to_thread(
                validate_bundle, data, requirements=self._requirements
            )
        except BundleInvalid as exc:
            raise ApiError.bad_request(
                f"bundle rejected: {exc}",
                code="invalid_bundle",
                problems=[msgspec.to_builtins(pr) for pr in exc.problems],
            ) from exc
        dep_id = new_id()
        key = bundle_key(p.project_id, dep_id)
        digest = sha256_hex(data)
        await self._store.put(key, data)
        created = DeploymentCreated(
            deployment_id=dep_id,
            notes=notes,
            bundle=BundleRef(key=key, sha256=digest, size=len(data)),
            requirements_sha256=validated.requirements_sha256,
            skills=[skill_record(s) for s in validated.skills],
        )
        seq = await self._append(p.project_id, created, deployment_created_id(dep_id))
        if activate:
            seq = await self._append(
                p.project_id,
                DeploymentActivated(
                    deployment_id=dep_id,
                    previous_id=self._views.deployments.project(p.project_id).active_id,
                ),
                deployment_activated_id(dep_id, seq),
            )
        await self._settle(seq)
        info = self._views.deployments.get(p.project_id, dep_id)
        assert info is not None
        return _deployment_out(info, activate)

    async def _append(self, project_id: str, event: Any, event_id: str) -> int:
        """Append to the project's deployments subject, guarded by its expected sequence."""
        for _ in range(3):
            pd = self._views.deployments.project(project_id)
            try:
                pub = await self._bus.append(
                    event,
                    project_id=project_id,
                    aggregate=AGG_DEPLOYMENTS,
                    aggregate_id=project_id,
                    event_id=event_id,
                    expected_last_subject_seq=pd.subject_seq,
                )
            except ConcurrencyConflict:
                # Another request changed the project's deployments: catch up, try again.
                last = await self._bus.last_subject_seq(
                    event_subject(project_id, AGG_DEPLOYMENTS, project_id)
                )
                await self._views.wait_for(last, self._wait)
                continue
            await self._views.wait_for(pub.seq, self._wait)
            return pub.seq
        raise ApiError.conflict("the project's deployments changed concurrently; retry the call")

    async def _settle(self, seq: int) -> None:
        # Lists read the Postgres view: let it show what we just wrote (bounded).
        await self._watcher.wait_for("deployments", seq, self._wait)

    async def list(self, p: Principal) -> dict[str, Any]:
        rows = await self._reads.list_deployments(p.project_id)
        out = []
        for r in rows:
            skills = sorted(r.pop("skills"), key=lambda s: s["name"])
            r.pop("requirements_sha256", None)
            r["skills"] = [
                {"name": s["name"], "kind": s["kind"], "description": s.get("description", "")}
                for s in skills
            ]
            out.append(r)
        return {"deployments": out}

    def _require(self, p: Principal, deployment_id: str) -> DeploymentInfo:
        info = self._views.deployments.get(p.project_id, deployment_id)
        if info is None:
            raise ApiError.not_found(
                f"deployment {deployment_id!r} not found in this project",
                code="deployment_not_found",
            )
        return info

    async def activate(self, p: Principal, deployment_id: str) -> dict[str, Any]:
        info = self._require(p, deployment_id)
        pd = self._views.deployments.project(p.project_id)
        if pd.active_id != deployment_id:
            seq = await self._append(
                p.project_id,
                DeploymentActivated(deployment_id=deployment_id, previous_id=pd.active_id),
                deployment_activated_id(deployment_id, pd.subject_seq),
            )
            await self._settle(seq)
        return _deployment_out(info, True)

    async def delete(self, p: Principal, deployment_id: str) -> dict[str, Any]:
        self._require(p, deployment_id)
        pd = self._views.deployments.project(p.project_id)
        if pd.active_id == deployment_id:
            raise ApiError.conflict(
                f"deployment {deployment_id} is the active deployment and cannot be deleted; "
                "activate another deployment first",
                code="deployment_active",
            )
        seq = await self._append(
            p.project_id,
            DeploymentDeleted(deployment_id=deployment_id),
            deployment_deleted_id(deployment_id),
        )
        await self._settle(seq)
        # The bundle stays in the store: jobs pinned to this deployment may still run (P2).
        return {"id": deployment_id, "deleted": True}

    def skills(self, p: Principal) -> dict[str, Any]:
        dep = self._views.deployments.project(p.project_id).active
        if dep is None:
            return {"deployment_id": None, "skills": []}
        return {
            "deployment_id": dep.id,
            "skills": [skill_detail(s) for s in sorted(dep.skills.values(), key=lambda s: s.name)],
        }
