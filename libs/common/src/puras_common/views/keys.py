"""API keys of every project (prefix -> project, secret hash, revoked): a pure fold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import assert_never

from puras_common.events.recorded import RecordedEvent
from puras_common.events.types import ApiKeyCreated, ApiKeyRevoked, KeyEvent, ProjectCreated

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
        if not isinstance(ev, KeyEvent):
            return
        match ev:
            case ProjectCreated():
                self.projects[rec.envelope.project_id] = ev.name
            case ApiKeyCreated():
                self.keys[ev.prefix] = KeyInfo(
                    prefix=ev.prefix,
                    project_id=rec.envelope.project_id,
                    secret_sha256=ev.secret_sha256,
                    created_at=rec.envelope.at,
                )
            case ApiKeyRevoked():
                k = self.keys.get(ev.prefix)
                if k is not None and k.project_id == rec.envelope.project_id:
                    self.keys[ev.prefix] = KeyInfo(
                        prefix=k.prefix,
                        project_id=k.project_id,
                        secret_sha256=k.secret_sha256,
                        created_at=k.created_at,
                        revoked=True,
                    )
            case _:
                assert_never(ev)
