"""A project's secrets as the log has them: the last event of each secret subject (X2).

The runner reads a project's ``ev.<project>.secret.*`` subjects in order and folds them
here; only what the fold holds is ever opened, and it holds ciphertext only (the values
are opened per job, under the master key, by the adapter). Reading on from the fold's
last sequence makes a refresh cost one request when nothing changed.

Pure: no I/O, no keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from puras_common.events.types import SecretDeleted, SecretSet

__all__ = ["ProjectSecrets", "SealedSecret", "SecretsUnavailable"]


class SecretsUnavailable(RuntimeError):
    """The project's secrets cannot be given to its job (no key, or a ciphertext no
    configured key opens): the job fails with this message, which holds no value."""


@dataclass(frozen=True, slots=True)
class SealedSecret:
    key_id: str
    ciphertext: str


@dataclass(slots=True)
class ProjectSecrets:
    """The fold: each live secret's sealed value, and how far the log was read."""

    last_seq: int = 0
    sealed: dict[str, SealedSecret] = field(default_factory=dict)

    def apply(self, seq: int, event: object) -> None:
        """One event of a secret subject, at its sequence (events at or before
        :attr:`last_seq` were applied already and change nothing)."""
        if seq <= self.last_seq:
            return
        self.last_seq = seq
        if isinstance(event, SecretSet):
            self.sealed[event.name] = SealedSecret(event.key_id, event.ciphertext)
        elif isinstance(event, SecretDeleted):
            self.sealed.pop(event.name, None)
