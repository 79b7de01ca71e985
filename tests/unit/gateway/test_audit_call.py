"""`POST /v1/admin/audit`'s use case: the `settle` parameter, one audit at a time, and an
audit that could not compare as a 503 naming why."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from puras_common.audit import AuditIncomplete
from puras_gateway.app.audit import AuditService, parse_settle
from puras_gateway.domain.errors import ApiError


class Auditor:
    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.calls: list[float] = []

    async def audit(self, settle_s: float) -> dict[str, Any]:
        self.calls.append(settle_s)
        self.started.set()
        await self.release.wait()
        if self.fail:
            raise AuditIncomplete(
                "the jobs view shows events up to sequence 3 (the log's last is 9)"
            )
        return {"clean": True, "differences": []}


@pytest.mark.parametrize(
    ("raw", "value"), [(None, 30.0), ("0", 0.0), ("12.5", 12.5), ("300", 300.0)]
)
def test_settle_is_seconds_from_0_to_300(raw: str | None, value: float) -> None:
    assert parse_settle(raw) == value


@pytest.mark.parametrize("raw", ["", "soon", "-1", "300.5", "nan", "inf"])
def test_a_bad_settle_is_a_400_naming_it(raw: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_settle(raw)
    assert err.value.status == 400
    assert "`settle` must be a number of seconds from 0 to 300" in err.value.message


async def test_one_audit_at_a_time_the_second_is_a_409() -> None:
    auditor = Auditor()
    service = AuditService(auditor)
    first = asyncio.create_task(service.run(5.0))
    await auditor.started.wait()
    with pytest.raises(ApiError) as err:
        await service.run(5.0)
    assert err.value.status == 409
    auditor.release.set()
    assert (await first)["clean"] is True
    assert auditor.calls == [5.0]


async def test_an_audit_that_could_not_compare_is_a_503_saying_why() -> None:
    auditor = Auditor(fail=True)
    auditor.release.set()
    with pytest.raises(ApiError) as err:
        await AuditService(auditor).run(1.0)
    assert err.value.status == 503
    assert "audit incomplete: the jobs view shows events up to sequence 3" in err.value.message


async def test_a_gateway_without_the_log_answers_503() -> None:
    with pytest.raises(ApiError) as err:
        await AuditService(None).run(1.0)
    assert err.value.status == 503
