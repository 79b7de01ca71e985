"""The billing audit as an operator's HTTP call (SPEC Z3, ``POST /v1/admin/audit``).

One audit at a time per gateway: it reads the whole log, and a second one asked for
meanwhile would only compete with it for the same CPU (the caller retries later).
"""

from __future__ import annotations

import asyncio
from typing import Any

from puras_common.audit import AuditIncomplete
from puras_gateway.app.ports import Auditor
from puras_gateway.domain.errors import ApiError

__all__ = ["MAX_SETTLE_S", "AuditService", "parse_settle"]

MAX_SETTLE_S = 300.0
DEFAULT_SETTLE_S = 30.0


def parse_settle(raw: str | None) -> float:
    """The ``settle`` query parameter: seconds to let billing catch up (0-300)."""
    if raw is None:
        return DEFAULT_SETTLE_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_SETTLE_S:  # also refuses nan
        raise ApiError.bad_request(
            f"`settle` must be a number of seconds from 0 to {MAX_SETTLE_S:g}, not {raw!r}",
            code="invalid_query",
        )
    return value


class AuditService:
    def __init__(self, auditor: Auditor | None) -> None:
        # None: an app built without the event log (the unit tests of other use cases).
        self._auditor = auditor
        self._running = asyncio.Lock()

    async def run(self, settle_s: float) -> dict[str, Any]:
        if self._auditor is None:
            raise ApiError.unavailable("this gateway has no event log to audit")
        if self._running.locked():
            raise ApiError.conflict(
                "an audit is already running on this gateway; retry when it has finished",
                code="audit_running",
            )
        async with self._running:
            try:
                return await self._auditor.audit(settle_s)
            except AuditIncomplete as exc:
                raise ApiError.unavailable(f"audit incomplete: {exc}") from exc
