"""Project secrets for jobs (X2): read from the event log, opened under the master key.

The runner has no database: a project's secrets are the last events of its
``ev.<project>.secret.*`` subjects, read by direct get (``next_by_subj``, the rights
every runner has already) and folded in :class:`~puras_runner.domain.secrets.ProjectSecrets`.
The fold (ciphertext only) is kept and read on from where it stopped; the opened values
are kept at most ``ttl_s`` (a set or delete reaches every job started that long after
it) and only for projects that ran a job within that time.

:class:`NoSecrets` is for runners built without the log (unit tests, tools).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from types import MappingProxyType
from typing import Protocol

from puras_common.events import DecodeError, decode_envelope, decode_event
from puras_common.events.subjects import AGG_SECRET, aggregate_filter
from puras_common.logging import get_logger
from puras_common.secret_box import Keyring, NoSecretsKey, Sealed, SecretUnreadable
from puras_runner.domain.secrets import ProjectSecrets, SecretsUnavailable

__all__ = ["LogSecrets", "NoSecrets"]

log = get_logger(__name__)

_EMPTY: Mapping[str, str] = MappingProxyType({})


class NoSecrets:
    """Returns no secrets for any project."""

    async def secrets_for(self, project_id: str) -> Mapping[str, str]:
        return _EMPTY


class SubjectLog(Protocol):
    """What :class:`LogSecrets` reads the log with (:class:`puras_common.bus.Bus`)."""

    def subject_messages(
        self, subject: str, *, after_seq: int = 0
    ) -> AsyncIterator[tuple[int, bytes]]: ...


class LogSecrets:
    """:class:`~puras_runner.app.ports.SecretsProvider` over ``PURAS_EVENTS``."""

    def __init__(
        self,
        bus: SubjectLog,
        keyring: Keyring,
        *,
        ttl_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._keyring = keyring
        self._ttl = ttl_s
        self._now = monotonic
        self._folds: dict[str, ProjectSecrets] = {}
        self._opened: dict[str, tuple[float, Mapping[str, str]]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def secrets_for(self, project_id: str) -> Mapping[str, str]:
        now = self._now()
        self._forget_stale(now)
        hit = self._opened.get(project_id)
        if hit is not None:
            return hit[1]
        lock = self._locks.setdefault(project_id, asyncio.Lock())
        async with lock:
            hit = self._opened.get(project_id)
            if hit is not None:  # opened by the job that held the lock
                return hit[1]
            fold = self._folds.setdefault(project_id, ProjectSecrets())
            await self._read_on(project_id, fold)
            values = self._open(project_id, fold)
            self._opened[project_id] = (self._now(), values)
            return values

    def _forget_stale(self, now: float) -> None:
        for pid in [p for p, (at, _) in self._opened.items() if now - at >= self._ttl]:
            del self._opened[pid]

    async def _read_on(self, project_id: str, fold: ProjectSecrets) -> None:
        subjects = aggregate_filter(AGG_SECRET, project_id)
        async for seq, data in self._bus.subject_messages(subjects, after_seq=fold.last_seq):
            try:
                event = decode_event(decode_envelope(data))
            except DecodeError as exc:
                # Skipping it could run a job with a deleted secret or without a new one.
                raise SecretsUnavailable(
                    f"a secret event of this project cannot be read (seq {seq}): {exc}"
                ) from None
            fold.apply(seq, event)

    def _open(self, project_id: str, fold: ProjectSecrets) -> Mapping[str, str]:
        if not fold.sealed:
            return _EMPTY
        values: dict[str, str] = {}
        for name, sealed in fold.sealed.items():
            try:
                values[name] = self._keyring.open(
                    project_id, name, Sealed(key_id=sealed.key_id, ciphertext=sealed.ciphertext)
                )
            except NoSecretsKey:
                raise SecretsUnavailable(
                    "the project has secrets, but this runner has no secrets master key "
                    "(PURAS_SECRETS_KEY) to open them; ask the operator to configure it"
                ) from None
            except SecretUnreadable as exc:
                log.error("secret does not open", project_id=project_id, name=name)
                raise SecretsUnavailable(
                    f"{exc}; ask the operator to configure that key (PURAS_SECRETS_PREVIOUS_KEYS)"
                ) from None
        return MappingProxyType(values)
