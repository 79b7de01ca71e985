"""API keys of every project (prefix -> project, secret hash, revoked): a pure fold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from puras_common.events.types import ApiKeyCreated, ApiKeyRevoked, ProjectCreated
from puras_common.projection.base import RecordedEvent

__all__ = ["KeyInfo", "KeysView"]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    prefix: str
    project_id: str
    secret_sha256: str
    created_at: datetime
    revoked: bool = False


class KeysView:
    def __init__(self) -> None:
        self.keys: dict[str, KeyInfo] = {}
        self.projects: dict[str, str] = {}
        """Project id -> name, for every project created."""
        self.last_seq = 0

    def apply(self, rec: RecordedEvent) -> None:
        if rec.seq and rec.seq <= self.last_seq:
            return
        self.last_seq = max(self.last_seq, rec.seq)
        ev = rec.event
        if isinstance(ev, ProjectCreated):
            self.projects[rec.envelope.project_id] = ev.name
        elif isinstance(ev, ApiKeyCreated):
            self.keys[ev.prefix] = KeyInfo(
                prefix=ev.prefix,
                project_id=rec.envelope.project_id,
                secret_sha256=ev.secret_sha256,
                created_at=rec.envelope.at,
            )
        elif isinstance(ev, ApiKeyRevoked):
            k = self.keys.get(ev.prefix)
            if k is not None and k.project_id == rec.envelope.project_id:
                self.keys[ev.prefix] = KeyInfo(
                    prefix=k.prefix,
                    project_id=k.project_id,
                    secret_sha256=k.secret_sha256,
                    created_at=k.created_at,
                    revoked=True,
                )
