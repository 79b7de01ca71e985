"""Spend over time (``GET /v1/usage``, SPEC Z2): the caller's project's billed calls,
summed per UTC day, skill or model slug, from billing's usage rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from puras_common.clock import Clock
from puras_gateway.app.auth import Principal
from puras_gateway.app.ports import ReadViews
from puras_gateway.domain.usage_query import parse_usage_query

__all__ = ["UsageService"]


class UsageService:
    def __init__(self, reads: ReadViews, clock: Clock) -> None:
        self._reads = reads
        self._clock = clock

    async def report(self, p: Principal, params: Mapping[str, str]) -> dict[str, Any]:
        """``{usage: [{key, billed_micros, calls, input_tokens, output_tokens, ...}], from,
        to, group_by}``: the range is echoed as applied, defaults filled in."""
        q = parse_usage_query(params, self._clock.now())
        rows = await self._reads.usage(p.project_id, q)
        return {
            "usage": rows,
            "from": q.start.isoformat(),
            "to": q.end.isoformat(),
            "group_by": q.group_by,
        }
