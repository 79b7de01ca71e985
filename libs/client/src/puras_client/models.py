"""Typed answers of the API for apps: what ``/v1`` returns, as frozen dataclasses.

Each ``from_json`` reads the fields it knows and ignores the rest, so a gateway that adds
a field (``held_reason``, a deployment's ``status``) never breaks an older client; every
object also keeps the JSON it came from in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from puras_client.errors import ClientError

__all__ = [
    "TERMINAL_STATUSES",
    "Balance",
    "Deployment",
    "JobEvent",
    "JobOut",
    "JobPage",
    "Skill",
    "Upload",
]

TERMINAL_STATUSES: Final = frozenset({"succeeded", "failed", "cancelled"})
"""J3: a job in one of these never changes again."""


def _obj(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ClientError(f"the API answered {what} with {type(value).__name__}, not an object")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class JobOut:
    """J2's JobOut (plus Z8's ``held_reason`` when the gateway sends it)."""

    id: str
    skill: str
    status: str
    project_id: str | None = None
    inputs: Any = None
    result: Any = None
    error: str | None = None
    cost_micros: int = 0
    deployment_id: str | None = None
    attempts: int = 0
    created_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    held_reason: str | None = None
    """Why a queued job waits (no credit), ``None`` when it does not or the gateway is older."""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, value: Any) -> JobOut:
        d = _obj(value, "a job")
        return cls(
            id=str(d["id"]),
            skill=str(d.get("skill", "")),
            status=str(d.get("status", "")),
            project_id=_opt_str(d.get("project_id")),
            inputs=d.get("inputs"),
            result=d.get("result"),
            error=_opt_str(d.get("error")),
            cost_micros=int(d.get("cost_micros") or 0),
            deployment_id=_opt_str(d.get("deployment_id")),
            attempts=int(d.get("attempts") or 0),
            created_at=_opt_str(d.get("created_at")),
            started_at=_opt_str(d.get("started_at")),
            finished_at=_opt_str(d.get("finished_at")),
            held_reason=_opt_str(d.get("held_reason")),
            raw=dict(d),
        )


@dataclass(frozen=True)
class JobPage:
    """One page of ``GET /v1/jobs``; ``next_cursor`` is ``None`` on the last."""

    jobs: list[JobOut]
    next_cursor: str | None

    @classmethod
    def from_json(cls, value: Any) -> JobPage:
        d = _obj(value, "a job list")
        return cls(
            jobs=[JobOut.from_json(j) for j in d.get("jobs") or []],
            next_cursor=_opt_str(d.get("next_cursor")),
        )


@dataclass(frozen=True)
class JobEvent:
    """One event of a job (J5). On a stream, the closing ``end`` frame is a JobEvent too:
    ``type == "end"``, ``id`` ``None``, the final JobOut as ``payload``."""

    id: int | None
    type: str
    payload: Any = None
    at: str | None = None
    job_id: str | None = None
    """Set on stream frames (Z6); ``None`` on ``GET /v1/jobs/{id}/events`` rows."""

    @property
    def job(self) -> JobOut | None:
        """The final JobOut carried by a terminal event or the ``end`` frame."""
        final = self.type == "end" or self.type in TERMINAL_STATUSES
        if final and isinstance(self.payload, Mapping) and "id" in self.payload:
            return JobOut.from_json(self.payload)
        return None

    @classmethod
    def from_json(cls, value: Any) -> JobEvent:
        d = _obj(value, "an event")
        raw_id = d.get("id")
        return cls(
            id=None if raw_id is None else int(raw_id),
            type=str(d.get("type", "")),
            payload=d.get("payload"),
            at=_opt_str(d.get("at")),
            job_id=_opt_str(d.get("job_id")),
        )


@dataclass(frozen=True)
class Skill:
    """A skill of the active deployment with its schemas (``GET /v1/skills``)."""

    name: str
    kind: str
    description: str = ""
    input_schema: Mapping[str, Any] | None = None
    output_schema: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Skill:
        d = _obj(value, "a skill")
        return cls(
            name=str(d["name"]),
            kind=str(d.get("kind", "")),
            description=str(d.get("description") or ""),
            input_schema=d.get("input_schema"),
            output_schema=d.get("output_schema"),
            raw=dict(d),
        )


@dataclass(frozen=True)
class Deployment:
    """One deployment (P3); ``status`` and ``error`` come with push-time builds (Z7) and
    are ``None`` from a gateway that does not build."""

    id: str
    active: bool
    notes: str = ""
    created_at: str | None = None
    status: str | None = None
    error: str | None = None
    skills: list[str] = field(default_factory=list)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> Deployment:
        d = _obj(value, "a deployment")
        return cls(
            id=str(d["id"]),
            active=bool(d.get("active")),
            notes=str(d.get("notes") or ""),
            created_at=_opt_str(d.get("created_at")),
            status=_opt_str(d.get("status")),
            error=_opt_str(d.get("error")),
            skills=[str(s.get("name")) for s in d.get("skills") or [] if isinstance(s, Mapping)],
            raw=dict(d),
        )


@dataclass(frozen=True)
class Upload:
    """What ``POST /v1/drive/upload`` stored (D2)."""

    drive_path: str
    full_path: str
    signed_url: str
    bytes: int
    content_type: str

    @classmethod
    def from_json(cls, value: Any) -> Upload:
        d = _obj(value, "an upload")
        return cls(
            drive_path=str(d["drive_path"]),
            full_path=str(d.get("full_path", "")),
            signed_url=str(d.get("signed_url", "")),
            bytes=int(d.get("bytes") or 0),
            content_type=str(d.get("content_type", "")),
        )


@dataclass(frozen=True)
class Balance:
    """``GET /v1/billing/balance`` (B1)."""

    credit_balance_micros: int

    @classmethod
    def from_json(cls, value: Any) -> Balance:
        return cls(credit_balance_micros=int(_obj(value, "a balance")["credit_balance_micros"]))
