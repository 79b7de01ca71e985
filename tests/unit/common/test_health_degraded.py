"""The health responder's three readiness states: starting (503), ready, degraded (200)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from puras_common.health import HealthServer, degraded_details


async def _get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


async def test_readyz_reports_degraded_with_200_and_the_details() -> None:
    state: dict[str, Any] = {"ready": False, "quarantined": 0}
    srv = HealthServer(
        "127.0.0.1",
        0,
        lambda: bool(state["ready"]),
        degraded=lambda: degraded_details({"ledger": state["quarantined"]}),
    )
    await srv.start()
    try:
        assert await _get(srv.port, "/readyz") == (503, {"status": "starting"})
        state["ready"] = True
        assert await _get(srv.port, "/readyz") == (200, {"status": "ready"})
        state["quarantined"] = 2
        code, body = await _get(srv.port, "/readyz")
        assert code == 200
        assert body["status"] == "degraded"
        assert body["quarantined"] == {"ledger": 2}
        assert body["quarantined_total"] == 2
    finally:
        await srv.stop()


def test_degraded_details_is_empty_when_nothing_needs_an_operator() -> None:
    assert degraded_details({"jobs": 0}, failing={}, skipped={"live-views": 0}) == {}
    out = degraded_details({}, failing={"jobs": "ConnectionResetError"}, skipped={"v": 1})
    assert out == {
        "projectors_failing": {"jobs": "ConnectionResetError"},
        "views_skipped": {"v": 1},
    }
