"""The parameters of ``GET /v1/usage`` (SPEC Z2), checked before any query (pure).

``from`` and ``to`` are ISO 8601 dates (``2026-12-01``: that day's UTC midnight) or
datetimes (``2026-12-01T09:30:00Z``, ``...+02:00``; one without an offset is UTC). The
range is half-open, ``from`` included and ``to`` excluded, so ``from=2026-12-01&to=
2026-12-02`` is exactly one UTC day. Defaults: ``to`` is now, ``from`` is 30 days
before ``to``; ``group_by`` is ``day``. A range is at most :data:`MAX_RANGE` long, so one
call never scans a project's whole history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from puras_gateway.domain.errors import ApiError

__all__ = [
    "DEFAULT_RANGE",
    "GROUP_BY",
    "MAX_RANGE",
    "USAGE_PARAMS",
    "GroupBy",
    "UsageQuery",
    "parse_usage_query",
]

GroupBy = Literal["day", "skill", "model"]
GROUP_BY: tuple[GroupBy, ...] = get_args(GroupBy)
DEFAULT_RANGE = timedelta(days=30)
MAX_RANGE = timedelta(days=366)
"""A (leap) year: a daily report of a year is at most 366 rows."""
USAGE_PARAMS = ("from", "to", "group_by")


@dataclass(frozen=True, slots=True)
class UsageQuery:
    start: datetime
    """Included (UTC)."""
    end: datetime
    """Excluded (UTC)."""
    group_by: GroupBy


def parse_usage_query(params: Mapping[str, str], now: datetime) -> UsageQuery:
    """The query of ``params`` (the request's query string); a 400 that names the
    parameter and what to send instead for anything else."""
    unknown = sorted(set(params) - set(USAGE_PARAMS))
    if unknown:
        raise ApiError.bad_request(
            f"unknown query parameter(s) {', '.join(unknown)}; "
            f"/v1/usage takes {', '.join(USAGE_PARAMS)}",
            code="invalid_request",
        )
    group = params.get("group_by") or "day"
    if group not in GROUP_BY:
        raise ApiError.bad_request(
            f"group_by must be one of {', '.join(GROUP_BY)}, got {group!r}",
            code="invalid_request",
        )
    end = _instant("to", params.get("to")) or now.astimezone(UTC)
    start = _instant("from", params.get("from"))
    if start is None:
        try:
            start = end - DEFAULT_RANGE
        except OverflowError:
            raise ApiError.bad_request(
                "to is too early to count 30 days back from; send from as well",
                code="invalid_request",
            ) from None
    if start >= end:
        raise ApiError.bad_request(
            f"from ({start.isoformat()}) must be before to ({end.isoformat()}): "
            "the range includes from and excludes to",
            code="invalid_request",
        )
    if end - start > MAX_RANGE:
        raise ApiError.bad_request(
            f"the range from {start.isoformat()} to {end.isoformat()} is longer than "
            f"{MAX_RANGE.days} days; ask for at most {MAX_RANGE.days} days per call",
            code="invalid_request",
        )
    return UsageQuery(start=start, end=end, group_by=group)


def _instant(name: str, raw: str | None) -> datetime | None:
    """The UTC instant of a ``from``/``to`` value (``None`` when absent or empty)."""
    if raw is None or raw == "":
        return None
    # A "+02:00" typed into a URL unescaped arrives as " 02:00" (a + is a space in a
    # query string): say so rather than only "malformed".
    hint = (
        "; a + in a URL is read as a space: send it as %2B, or give the time in UTC with Z"
        if " " in raw
        else ""
    )
    shape = (
        f"{name} must be an ISO 8601 date (2026-12-01, meaning its UTC midnight) or "
        f"datetime (2026-12-01T09:30:00Z), got {raw!r}{hint}"
    )
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError.bad_request(shape, code="invalid_request") from None
    if at.tzinfo is None:
        return at.replace(tzinfo=UTC)
    try:
        return at.astimezone(UTC)
    except OverflowError:
        raise ApiError.bad_request(
            f"{name} {raw!r} is out of range in UTC", code="invalid_request"
        ) from None
