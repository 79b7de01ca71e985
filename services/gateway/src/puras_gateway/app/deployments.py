"""Deployment use cases (P1-P4): push, list, activate (rollback), delete; skills.

Z7: a bundle with a ``requirements.txt`` is ``building`` until a runner has built its
venv; the gateway only asks (``BuildRequests``) and watches the deployments view for the
outcome the runner records. The push waits for it (bounded by ``build_wait_s``) unless
``wait`` is false; activation the push asked for is recorded in ``deployment.created``
and carried out by the runner that records the successful build, so it survives any
crash of either side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final

import msgspec

from puras_common.builds import BuildOutcome
from puras_common.bundles import BundleStore, bundle_key, sha256_hex
from puras_common.bus import ConcurrencyConflict
from puras_common.events.ids import (
    deployment_activated_id,
    deployment_build_outcome_id,
    deployment_created_id,
    deployment_deleted_id,
)
from puras_common.events.subjects import AGG_DEPLOYMENTS, event_subject
from puras_common.events.types import (
    BundleRef,
    DeploymentActivated,
    DeploymentBuildFailed,
    DeploymentBuilt,
    DeploymentCreated,
    DeploymentDeleted,
    SkillRecord,
)
from puras_common.ids import new_id
from puras_common.manifest import BundleInvalid, RequirementsPolicy, validate_bundle
from puras_common.manifest.spec import SkillSpec
from puras_common.views.deployments import DeploymentInfo, ProjectDeployments
from puras_gateway.app.auth import Principal
from puras_gateway.app.ports import (
    BuildRequests,
    EventLog,
    LiveViews,
    ProjectionWatch,
    ReadViews,
)
from puras_gateway.domain.errors import ApiError

__all__ = ["DeploymentsService"]

MAX_DECISION_CONFLICTS: Final = 20
"""Appends of a build's outcome retried after the subject moved on (a busy project's
pushes and rollbacks); past it the report is redelivered later."""


def skill_record(spec: SkillSpec) -> SkillRecord:
    """The log's record of a validated skill (the same JSON, the events' own type)."""
    return msgspec.convert(msgspec.to_builtins(spec), SkillRecord)


def skill_summary(s: SkillRecord) -> dict[str, Any]:
    return {"name": s.name, "kind": s.kind, "description": s.description}


def skill_detail(s: SkillRecord) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(s)
    out["tools"] = [t["name"] for t in out.get("tools", [])]
    return out


POLL_MIN_S = 0.05
POLL_MAX_S = 0.5


def _deployment_out(d: DeploymentInfo, active: bool) -> dict[str, Any]:
    return {
        "id": d.id,
        "notes": d.notes,
        "created_at": d.created_at,
        "active": active,
        "status": d.status,
        "error": d.error,
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
        builds: BuildRequests | None = None,
        build_wait_s: float = 660.0,
    ) -> None:
        self._bus = bus
        self._builds = builds
        self._build_wait = build_wait_s
        self._requirements = requirements
        self._store = store
        self._views = views
        self._reads = reads
        self._watcher = watcher
        self._wait = wait_s

    async def create(
        self, p: Principal, data: bytes, notes: str, activate: bool, wait: bool = True
    ) -> dict[str, Any]:
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
        build = validated.requirements_sha256 is not None
        if build and self._builds is None:
            raise ApiError.unavailable(
                "this gateway cannot request builds of requirements.txt; retry later"
            )
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
            build=build,
            activate_when_built=build and activate,
        )
        if build:
            # Asked before it is recorded: a crash in between leaves a request for a
            # deployment that never was (dropped), never a recorded one that waits forever.
            assert self._builds is not None
            await self._builds.request(p.project_id, dep_id)
        seq = await self._append(p.project_id, created, deployment_created_id(dep_id))
        if build:
            return await self._after_build(p, dep_id, activate=activate, wait=wait)
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

    async def _after_build(
        self, p: Principal, dep_id: str, *, activate: bool, wait: bool
    ) -> dict[str, Any]:
        """The deployment once its build is recorded (and, if asked, it is activated), or
        as it stands when ``wait`` is false or the wait is over: still ``building``."""
        if wait:
            await self._await_build(p.project_id, dep_id, activate)
        pd = self._views.deployments.project(p.project_id)
        info = pd.deployments.get(dep_id)
        if info is None:
            raise ApiError.not_found(
                f"deployment {dep_id!r} was deleted while it was being built",
                code="deployment_not_found",
            )
        await self._settle(self._views.deployments.last_seq)
        out = _deployment_out(info, pd.active_id == dep_id)
        if info.status == "failed":
            raise ApiError.unprocessable(
                f"the build of requirements.txt failed; the deployment was not activated. "
                f"Fix requirements.txt and push again.\n{info.error}",
                code="build_failed",
                deployment=out,
            )
        return out

    async def _await_build(self, project_id: str, dep_id: str, activate: bool) -> None:
        # The outcome arrives in the live view (from the runner's event): a bounded poll of
        # an in-memory fold.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._build_wait
        delay = POLL_MIN_S
        while loop.time() < deadline:
            pd = self._views.deployments.project(project_id)
            info = pd.deployments.get(dep_id)
            if info is None or info.status == "failed":
                return
            if info.status == "ready" and not (activate and info.activate_pending):
                return
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, POLL_MAX_S)

    # -- build outcomes (Z7), reported by the runners -------------------------------------

    async def record_build(self, outcome: BuildOutcome) -> bool:
        """Record a runner's build outcome, then the activation the push asked for.

        Deployment facts have one writer, this service: a runner reports, the gateway
        records. Each step is decided on the fold as it stands and appended with its
        sequence as the expected one, so a redelivered report decides nothing twice and a
        push or rollback made meanwhile is never overwritten. ``False``: this gateway does
        not show the deployment (not caught up yet, or deleted); the caller tries later.
        """
        pid, dep_id = outcome.project_id, outcome.deployment_id
        if self._views.deployments.get(pid, dep_id) is None:
            last = await self._bus.last_subject_seq(event_subject(pid, AGG_DEPLOYMENTS, pid))
            await self._views.wait_for(last, self._wait)
            if self._views.deployments.get(pid, dep_id) is None:
                return False

        def outcome_event(pd: ProjectDeployments) -> tuple[Any, str] | None:
            info = pd.deployments.get(dep_id)
            if info is None or info.status != "building":
                return None  # recorded already (a redelivered report), or deleted
            event: Any = (
                DeploymentBuilt(
                    deployment_id=dep_id, venv_key=outcome.venv_key, reused=outcome.reused
                )
                if outcome.error is None
                else DeploymentBuildFailed(deployment_id=dep_id, error=outcome.error)
            )
            return event, deployment_build_outcome_id(dep_id)

        def activation(pd: ProjectDeployments) -> tuple[Any, str] | None:
            info = pd.deployments.get(dep_id)
            # Not when another deployment was activated since the push: that later
            # choice wins (the fold cleared `activate_pending`).
            if info is None or info.status != "ready" or not info.activate_pending:
                return None
            event = DeploymentActivated(deployment_id=dep_id, previous_id=pd.active_id)
            return event, deployment_activated_id(dep_id, pd.subject_seq)

        for decide in (outcome_event, activation):
            seq = await self._decide_and_append(pid, decide)
            if seq is not None:
                await self._settle(seq)
        return True

    async def _decide_and_append(
        self, project_id: str, decide: Callable[[ProjectDeployments], tuple[Any, str] | None]
    ) -> int | None:
        """Append what ``decide`` makes of the fold, deciding again after every conflict."""
        subject = event_subject(project_id, AGG_DEPLOYMENTS, project_id)
        for _ in range(MAX_DECISION_CONFLICTS):
            pd = self._views.deployments.project(project_id)
            decided = decide(pd)
            if decided is None:
                return None
            event, event_id = decided
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
                await self._views.wait_for(await self._bus.last_subject_seq(subject), self._wait)
                continue
            await self._views.wait_for(pub.seq, self._wait)
            return pub.seq
        raise ConcurrencyConflict(f"deployments of project {project_id} keep changing")

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
            r.setdefault("status", "ready")
            r.setdefault("error", None)
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
        if info.status == "building":
            raise ApiError.conflict(
                f"deployment {deployment_id} is still building its requirements.txt; it can "
                "be activated once its status is ready (see GET /v1/deployments)",
                code="deployment_not_ready",
            )
        if info.status == "failed":
            raise ApiError.conflict(
                f"deployment {deployment_id} cannot be activated: its build failed "
                f"(fix requirements.txt and push again).\n{info.error}",
                code="deployment_build_failed",
            )
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
