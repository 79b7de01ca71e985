"""``GET /v1/usage`` (SPEC Z2): its parameter rules (ISO dates or datetimes, from included
and to excluded, defaults, group_by, a bounded range), a clear 400 for anything else, and
the caller's project only; through the real HTTP app over the gateway fakes (the SQL is
held to real rows by ``tests/integration/gateway/test_usage_report_pg.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from gateway_fakes import T0, FakeCommands, FakeLiveViews, FakeReadViews, FixedClock, Unused

from puras_common.auth import generate_key
from puras_common.views.keys import KeyInfo
from puras_gateway.bootstrap import Gateway, build
from puras_gateway.domain.usage_query import UsageQuery
from puras_gateway.entrypoints.http import create_app
from puras_gateway.settings import GatewaySettings

P = "0a1b2c3d-0000-7000-8000-000000000001"
OTHER = "0a1b2c3d-0000-7000-8000-000000000002"
ROWS = [
    {
        "key": "2025-12-30",
        "billed_micros": 12_600,
        "calls": 1,
        "input_tokens": 1000,
        "output_tokens": 500,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
    }
]


class UsageReads(FakeReadViews):
    """Answers every usage query with ``ROWS`` and keeps the queries asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, UsageQuery]] = []

    async def usage(self, project_id: str, q: UsageQuery) -> list[dict[str, Any]]:
        self.asked.append((project_id, q))
        return ROWS


class Stack:
    def __init__(self) -> None:
        self.reads = UsageReads()
        self.views = FakeLiveViews()
        self.keys = {pid: self._key(pid) for pid in (P, OTHER)}
        settings = GatewaySettings(env="dev")
        self.gateway = Gateway(settings)
        self.gateway.app = build(
            settings,
            events=Unused(),
            commands=FakeCommands(),
            views=self.views,
            reads=self.reads,
            job_log=Unused(),
            idempotency=None,
            billing=Unused(),
            bundles=Unused(),
            watcher=Unused(),
            clock=FixedClock(),
        )

    def _key(self, project_id: str) -> str:
        k = generate_key()
        self.views.keys.keys[k.prefix] = KeyInfo(
            prefix=k.prefix, project_id=project_id, secret_sha256=k.secret_sha256, created_at=T0
        )
        return k.key

    def auth(self, project_id: str = P) -> dict[str, str]:
        return {"authorization": f"Bearer {self.keys[project_id]}"}


@pytest.fixture
async def stack() -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    s = Stack()
    transport = httpx.ASGITransport(app=create_app(s.gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as c:
        yield s, c


async def _ok(
    stack: tuple[Stack, httpx.AsyncClient], query: str, project_id: str = P
) -> tuple[dict[str, Any], UsageQuery]:
    s, c = stack
    r = await c.get(f"/v1/usage{query}", headers=s.auth(project_id))
    assert r.status_code == 200, r.text
    asked_project, q = s.reads.asked[-1]
    assert asked_project == project_id
    return r.json(), q


def _utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0, us: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, us, tzinfo=UTC)


async def test_defaults_are_the_last_30_days_up_to_now_by_day(
    stack: tuple[Stack, httpx.AsyncClient],
) -> None:
    body, q = await _ok(stack, "")
    assert q == UsageQuery(start=T0 - timedelta(days=30), end=T0, group_by="day")
    assert body == {
        "usage": ROWS,
        "from": "2025-12-02T00:00:00+00:00",
        "to": "2026-01-01T00:00:00+00:00",
        "group_by": "day",
    }


async def test_a_date_is_its_utc_midnight_and_to_is_excluded(
    stack: tuple[Stack, httpx.AsyncClient],
) -> None:
    _, q = await _ok(stack, "?from=2025-12-01&to=2025-12-02&group_by=model")
    assert q == UsageQuery(start=_utc(2025, 12, 1), end=_utc(2025, 12, 2), group_by="model")


@pytest.mark.parametrize(
    ("value", "at"),
    [
        ("2025-12-01T09:30:00Z", _utc(2025, 12, 1, 9, 30)),
        ("2025-12-01T09:30:00%2B02:00", _utc(2025, 12, 1, 7, 30)),
        ("2025-12-01T09:30:00-05:00", _utc(2025, 12, 1, 14, 30)),
        ("2025-12-01T09:30:00", _utc(2025, 12, 1, 9, 30)),  # no offset: UTC
        ("2025-12-01T09:30:00.250Z", _utc(2025, 12, 1, 9, 30, 0, 250_000)),
    ],
)
async def test_datetimes_are_read_in_utc(
    stack: tuple[Stack, httpx.AsyncClient], value: str, at: datetime
) -> None:
    _, q = await _ok(stack, f"?from={value}&group_by=skill")
    assert (q.start, q.end, q.group_by) == (at, T0, "skill")


async def test_only_to_counts_30_days_back_from_it(
    stack: tuple[Stack, httpx.AsyncClient],
) -> None:
    _, q = await _ok(stack, "?to=2025-11-15")
    assert (q.start, q.end) == (_utc(2025, 10, 16), _utc(2025, 11, 15))


async def test_a_range_of_366_days_is_allowed(stack: tuple[Stack, httpx.AsyncClient]) -> None:
    _, q = await _ok(stack, "?from=2024-01-01&to=2025-01-01")
    assert q.end - q.start == timedelta(days=366)


async def test_each_caller_sees_only_its_project(stack: tuple[Stack, httpx.AsyncClient]) -> None:
    await _ok(stack, "", project_id=OTHER)
    s, _ = stack
    assert [pid for pid, _ in s.reads.asked] == [OTHER]


async def test_usage_needs_a_key(stack: tuple[Stack, httpx.AsyncClient]) -> None:
    s, c = stack
    r = await c.get("/v1/usage")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert s.reads.asked == []


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("?group_by=week", "group_by must be one of day, skill, model, got 'week'"),
        ("?group-by=skill", "unknown query parameter(s) group-by; /v1/usage takes from, to"),
        ("?from=yesterday", "from must be an ISO 8601 date (2026-12-01, meaning its UTC"),
        ("?to=2025-13-01", "to must be an ISO 8601 date"),
        ("?from=2025-12-01T09:30:00+02:00", "a + in a URL is read as a space: send it as %2B"),
        (
            "?from=2025-12-02&to=2025-12-01",
            "from (2025-12-02T00:00:00+00:00) must be before to (2025-12-01T00:00:00+00:00)",
        ),
        ("?from=2025-12-01&to=2025-12-01", "must be before to"),
        ("?from=2026-01-01", "must be before to"),  # to defaults to now: 2026-01-01
        ("?from=2024-01-01&to=2025-01-02", "longer than 366 days; ask for at most 366 days"),
        ("?to=0001-01-10", "to is too early to count 30 days back from; send from as well"),
    ],
)
async def test_bad_parameters_are_a_400_saying_what_to_fix(
    stack: tuple[Stack, httpx.AsyncClient], query: str, says: str
) -> None:
    s, c = stack
    r = await c.get(f"/v1/usage{query}", headers=s.auth())
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_request"
    assert says in err["message"]
    assert s.reads.asked == []
