"""Who is calling: a project API key (T1/T2) or the operator's admin token (T3)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from puras_common.auth import parse_key, tokens_equal, verify_secret
from puras_common.clock import Clock, SystemClock
from puras_common.events.types import SpendLimit
from puras_common.logging import get_logger
from puras_common.views.keys import KeysView
from puras_gateway.app.ports import KeyUseRecorder
from puras_gateway.domain.errors import ApiError

__all__ = ["Authenticator", "Principal"]

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    project_id: str
    key_prefix: str
    spend_limit: SpendLimit | None = None
    """The key's spend limit as the keys view has it now (Z1)."""


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise ApiError.unauthorized(
            "missing API key: send the header `Authorization: Bearer puras_live_<prefix>.<secret>`"
        )
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError.unauthorized(
            "the Authorization header must be `Bearer <key>` (e.g. `Bearer puras_live_...`)"
        )
    return value.strip()


class Authenticator:
    def __init__(
        self,
        keys: KeysView,
        admin_token: str,
        usage: KeyUseRecorder | None,
        clock: Clock | None = None,
    ) -> None:
        self._keys = keys
        self._admin = admin_token
        self._usage = usage
        self._clock = clock or SystemClock()
        self._bg: set[asyncio.Task[None]] = set()

    def key(self, authorization: str | None) -> Principal:
        presented = _bearer(authorization)
        parsed = parse_key(presented)
        if parsed is None:
            raise ApiError.unauthorized(
                "invalid API key: expected `puras_live_<prefix>.<secret>` with the dot kept"
            )
        info = self._keys.keys.get(parsed.prefix)
        # Compare even when the prefix is unknown so timing does not tell prefixes apart.
        ok = verify_secret(parsed.secret, info.secret_sha256 if info else "0" * 64)
        if info is None or not ok:
            raise ApiError.unauthorized("invalid API key")
        if info.revoked:
            raise ApiError.unauthorized("this API key was revoked; create a new one")
        self._touch(parsed.prefix)
        # Each request runs in its own task: whatever it logs carries its project.
        structlog.contextvars.bind_contextvars(project_id=info.project_id)
        return Principal(
            project_id=info.project_id, key_prefix=parsed.prefix, spend_limit=info.spend_limit
        )

    def admin(self, authorization: str | None) -> None:
        if not self._admin:
            raise ApiError.unauthorized("admin calls are disabled: the server has no admin token")
        presented = _bearer(authorization)
        if not tokens_equal(presented, self._admin):
            raise ApiError.unauthorized("invalid admin token")

    def _touch(self, prefix: str) -> None:
        if self._usage is None or not self._usage.due(prefix, time.monotonic()):
            return
        task = asyncio.get_running_loop().create_task(self._write_usage(prefix))
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def _write_usage(self, prefix: str) -> None:
        assert self._usage is not None
        try:
            await self._usage.record(prefix, self._clock.now())
        except Exception as exc:  # last_used_at is informative; never fail a request on it
            log.warning("could not record key use", prefix=prefix, error=str(exc))
