"""Operator and key-management use cases: projects, keys, credit (T1-T3, B4)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import msgspec

from puras_common.auth import generate_key
from puras_common.clock import Clock, SystemClock
from puras_common.events.commands import GrantCredit
from puras_common.events.ids import (
    key_created_id,
    key_revoked_id,
    key_spend_limit_id,
    project_created_id,
    project_policy_id,
)
from puras_common.events.subjects import AGG_KEY, AGG_PROJECT
from puras_common.events.types import (
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeySpendLimitSet,
    ProjectCreated,
    ProjectPolicySet,
    SpendLimit,
)
from puras_common.ids import new_id
from puras_common.spend import period_begins
from puras_gateway.app.ports import Billing, EventLog, LiveViews, ProjectionWatch, ReadViews
from puras_gateway.domain.errors import ApiError

__all__ = [
    "AdminService",
    "CreateKeyBody",
    "CreateProjectBody",
    "GrantBody",
    "PolicyBody",
    "SpendLimitBody",
]

MICROS_PER_USD = 1_000_000
MAX_GRANT_MICROS = 10**15


class CreateProjectBody(msgspec.Struct, frozen=True, kw_only=True):
    name: str


MAX_LIMIT_MICROS = 10**15


class SpendLimitBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Z1: ``{"micros": <positive integer>, "period": "day" | "month"}``."""

    micros: Annotated[int, msgspec.Meta(gt=0, le=MAX_LIMIT_MICROS)]
    period: Literal["day", "month"]

    def limit(self) -> SpendLimit:
        return SpendLimit(micros=self.micros, period=self.period)


class CreateKeyBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /v1/keys``: an optional spend limit for the new key."""

    spend_limit: SpendLimitBody | None = None


class PolicyBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``PUT /v1/billing/policy``."""

    stop_agents_at_zero: bool


def limit_out(limit: SpendLimit | None) -> dict[str, Any] | None:
    return None if limit is None else {"micros": limit.micros, "period": limit.period}


class GrantBody(msgspec.Struct, frozen=True, kw_only=True):
    usd: float | int | str | None = None
    micros: int | None = None
    note: str = ""


def grant_micros(body: GrantBody) -> int:
    if (body.usd is None) == (body.micros is None):
        raise ApiError.bad_request(
            'send exactly one of {"usd": <amount>} or {"micros": <integer>}', code="invalid_body"
        )
    if body.micros is not None:
        micros = body.micros
    else:
        try:
            # Decimal from the text of the number: 0.1 USD is exactly 100000 micros.
            amount = Decimal(str(body.usd))
        except InvalidOperation:
            raise ApiError.bad_request("`usd` must be a number", code="invalid_body") from None
        if not amount.is_finite():
            raise ApiError.bad_request("`usd` must be a finite number", code="invalid_body")
        scaled = amount * MICROS_PER_USD
        if scaled != scaled.to_integral_value():
            raise ApiError.bad_request(
                "`usd` has more precision than a micro (1e-6 USD)", code="invalid_body"
            )
        micros = int(scaled)
    if micros <= 0:
        raise ApiError.bad_request("the amount must be positive", code="invalid_body")
    if micros > MAX_GRANT_MICROS:
        raise ApiError.bad_request("the amount is too large", code="invalid_body")
    return micros


class AdminService:
    def __init__(
        self,
        *,
        bus: EventLog,
        billing: Billing,
        views: LiveViews,
        reads: ReadViews,
        watcher: ProjectionWatch,
        wait_s: float,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or SystemClock()
        self._bus = bus
        self._billing = billing
        self._views = views
        self._reads = reads
        self._watcher = watcher
        self._wait = wait_s

    async def create_project(self, body: CreateProjectBody) -> dict[str, Any]:
        name = body.name.strip()
        if not name or len(name) > 200:
            raise ApiError.bad_request("`name` must be 1-200 characters", code="invalid_body")
        pid = new_id()
        pub = await self._bus.append(
            ProjectCreated(name=name),
            project_id=pid,
            aggregate=AGG_PROJECT,
            aggregate_id=pid,
            event_id=project_created_id(pid),
        )
        await self._views.wait_for(pub.seq, self._wait)
        return {"id": pid, "name": name}

    async def list_projects(self) -> dict[str, Any]:
        return {"projects": await self._reads.list_projects()}

    def require_project(self, project_id: str) -> None:
        if project_id not in self._views.keys.projects:
            raise ApiError.not_found(f"project {project_id!r} not found", code="project_not_found")

    async def create_key(
        self, project_id: str, *, by: Literal["admin", "key"], body: CreateKeyBody | None = None
    ) -> dict[str, Any]:
        self.require_project(project_id)
        k = generate_key()
        limit = body.spend_limit.limit() if body is not None and body.spend_limit else None
        pub = await self._bus.append(
            ApiKeyCreated(
                prefix=k.prefix, secret_sha256=k.secret_sha256, created_by=by, spend_limit=limit
            ),
            project_id=project_id,
            aggregate=AGG_KEY,
            aggregate_id=k.prefix,
            event_id=key_created_id(k.prefix),
        )
        # The key must work on the very next request to this gateway, and be listed.
        await self._views.wait_for(pub.seq, self._wait)
        await self._watcher.wait_for("keys", pub.seq, self._wait)
        out: dict[str, Any] = {"key": k.key, "prefix": k.prefix}
        if limit is not None:
            out["spend_limit"] = limit_out(limit)
        return out

    async def list_keys(self, project_id: str) -> dict[str, Any]:
        keys = await self._reads.list_keys(project_id)
        now = self._clock.now()
        for k in keys:
            info = self._views.keys.keys.get(k["prefix"])
            limit = info.spend_limit if info is not None else None
            k["spend_limit"] = limit_out(limit)
            if limit is not None:
                # What billing charged the key's jobs this period (holds of calls in
                # flight are not charges: they show in the jobs' events).
                k["spent_micros"] = await self._reads.key_spend(
                    project_id, k["prefix"], since=period_begins(limit.period, now)
                )
        return {"keys": keys}

    def _active_key(self, project_id: str, prefix: str) -> None:
        info = self._views.keys.keys.get(prefix)
        if info is None or info.project_id != project_id or info.revoked:
            raise ApiError.not_found(
                f"no active key with prefix {prefix!r} in this project", code="key_not_found"
            )

    async def set_spend_limit(
        self, project_id: str, prefix: str, body: SpendLimitBody | None
    ) -> dict[str, Any]:
        """Set, change (``body``) or lift (``None``) a key's spend limit (Z1): jobs
        submitted with the key from now on run under it."""
        self._active_key(project_id, prefix)
        limit = body.limit() if body is not None else None
        pub = await self._bus.append(
            ApiKeySpendLimitSet(prefix=prefix, spend_limit=limit),
            project_id=project_id,
            aggregate=AGG_KEY,
            aggregate_id=prefix,
            event_id=key_spend_limit_id(prefix, new_id()),
        )
        # The next submit on this gateway runs under it.
        await self._views.wait_for(pub.seq, self._wait)
        return {"prefix": prefix, "spend_limit": limit_out(limit)}

    def policy(self, project_id: str) -> dict[str, Any]:
        return {"stop_agents_at_zero": self._views.keys.policy(project_id).stop_agents_at_zero}

    async def set_policy(self, project_id: str, body: PolicyBody) -> dict[str, Any]:
        """The project's billing policy; jobs submitted from now on follow it."""
        pub = await self._bus.append(
            ProjectPolicySet(stop_agents_at_zero=body.stop_agents_at_zero),
            project_id=project_id,
            aggregate=AGG_PROJECT,
            aggregate_id=project_id,
            event_id=project_policy_id(project_id, new_id()),
        )
        await self._views.wait_for(pub.seq, self._wait)
        return self.policy(project_id)

    async def revoke_key(self, project_id: str, prefix: str) -> dict[str, Any]:
        self.require_project(project_id)
        self._active_key(project_id, prefix)
        pub = await self._bus.append(
            ApiKeyRevoked(prefix=prefix),
            project_id=project_id,
            aggregate=AGG_KEY,
            aggregate_id=prefix,
            event_id=key_revoked_id(prefix),
        )
        await self._views.wait_for(pub.seq, self._wait)
        await self._watcher.wait_for("keys", pub.seq, self._wait)
        return {"prefix": prefix, "revoked": True}

    async def grant(self, project_id: str, body: GrantBody) -> dict[str, Any]:
        self.require_project(project_id)
        micros = grant_micros(body)
        cmd = GrantCredit(grant_id=new_id(), project_id=project_id, micros=micros, note=body.note)
        # Billing records it (the ledger has one writer, which guards its sequence).
        projected = await self._billing.grant(cmd, self._wait)
        out: dict[str, Any] = {
            "project_id": project_id,
            "grant_id": cmd.grant_id,
            "granted_micros": micros,
        }
        # Show the new balance when the ledger projection (billing) has it within the bound.
        if projected:
            out["credit_balance_micros"] = await self._reads.balance(project_id)
        return out
