"""Browser apps on other origins (``PURAS_GATEWAY_CORS_ORIGINS``): off by default; when
set, a preflight for a submit passes and a submit stream's ``Puras-Job-Id`` is readable."""

from __future__ import annotations

import httpx
from gateway_fakes import client_for

from puras_gateway.settings import GatewaySettings

PREFLIGHT = {
    "Origin": "https://app.example.com",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


async def _preflight(settings: GatewaySettings) -> httpx.Response:
    async for c in client_for(settings):
        r: httpx.Response = await c.options("/v1/jobs", headers=PREFLIGHT)
        return r
    raise AssertionError("no client")


async def test_no_origin_is_allowed_unless_configured() -> None:
    r = await _preflight(GatewaySettings(env="dev"))
    assert "access-control-allow-origin" not in r.headers


async def test_a_configured_origin_may_submit_and_read_the_job_id_header() -> None:
    settings = GatewaySettings(env="dev", cors_origins=["https://app.example.com"])
    r = await _preflight(settings)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    allowed = r.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "idempotency-key"):
        assert header in allowed
    async for c in client_for(settings):
        got = await c.get("/v1/pricing", headers={"Origin": "https://app.example.com"})
        assert got.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "puras-job-id" in got.headers["access-control-expose-headers"].lower()
        other = await c.get("/v1/pricing", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
