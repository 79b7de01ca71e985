"""API keys of every project (prefix -> project, secret hash, revoked, spend limit) and
each project's billing policy: a pure fold."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import assert_never

from puras_common.events.recorded import RecordedEvent
from puras_common.events.types import (
    ApiKeyCreated,
    ApiKeyRevoked,
    ApiKeySpendLimitSet,
    KeyEvent,
    ProjectCreated,
    ProjectPolicySet,
    SpendLimit,
)

__all__ = ["KeyInfo", "KeysView", "ProjectPolicy"]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    prefix: str
    project_id: str
    secret_sha256: str
    created_at: datetime
    revoked: bool = False
    spend_limit: SpendLimit | None = None


@dataclass(frozen=True, slots=True)
class ProjectPolicy:
    """What a project asked of billing (its defaults until it says otherwise)."""

    stop_agents_at_zero: bool = False


class KeysView:
    def __init__(self) -> None:
        self.keys: dict[str, KeyInfo] = {}
        self.projects: dict[str, str] = {}
        """Project id -> name, for every project created."""
        self.policies: dict[str, ProjectPolicy] = {}
        """Project id -> its billing policy, for projects that set one."""
        self.last_seq = 0

    def policy(self, project_id: str) -> ProjectPolicy:
        return self.policies.get(project_id, ProjectPolicy())

    def apply(self, rec: RecordedEvent) -> None:
        if rec.seq and rec.seq <= self.last_seq:
            return
        self.last_seq = max(self.last_seq, rec.seq)
        ev = rec.event
        if not isinstance(ev, KeyEvent):
            return
        pid = rec.envelope.project_id
        match ev:
            case ProjectCreated():
                self.projects[pid] = ev.name
            case ProjectPolicySet():
                self.policies[pid] = ProjectPolicy(stop_agents_at_zero=ev.stop_agents_at_zero)
            case ApiKeyCreated():
                self.keys[ev.prefix] = KeyInfo(
                    prefix=ev.prefix,
                    project_id=pid,
                    secret_sha256=ev.secret_sha256,
                    created_at=rec.envelope.at,
                    spend_limit=ev.spend_limit,
                )
            case ApiKeyRevoked():
                k = self.keys.get(ev.prefix)
                if k is not None and k.project_id == pid:
                    self.keys[ev.prefix] = dataclasses.replace(k, revoked=True)
            case ApiKeySpendLimitSet():
                k = self.keys.get(ev.prefix)
                if k is not None and k.project_id == pid:
                    self.keys[ev.prefix] = dataclasses.replace(k, spend_limit=ev.spend_limit)
            case _:
                assert_never(ev)
