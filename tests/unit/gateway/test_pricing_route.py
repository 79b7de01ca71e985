"""``GET /v1/pricing`` (SPEC B2, T1): public, every slug, the registry version and the
margin in effect; through the real HTTP app over the gateway fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from gateway_fakes import client_for

from puras_common.model_catalog import known_models
from puras_common.pricing import load_registry
from puras_gateway.settings import GatewaySettings


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for c in client_for(GatewaySettings(env="dev")):
        yield c


async def test_pricing_needs_no_key_and_lists_every_slug(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/pricing")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == load_registry().version
    assert body["margin_pct"] == 20
    assert [m["slug"] for m in body["models"]] == known_models()
    assert [m["slug"] for m in body["media"]] == load_registry().media_slugs()
    sonnet = next(m for m in body["models"] if m["slug"] == "claude/sonnet-4-6")
    assert sonnet["shape"] == "per_token"
    assert sonnet["rates"]["input"] == {"micros": 3_600_000, "usd": "3.60"}
    veo = next(m for m in body["media"] if m["slug"] == "google/veo-3-t2v")
    assert (veo["kind"], veo["shape"], veo["conditional"]) == ("video", "per_second", True)
    assert {r["label"]: r["micros"] for r in veo["rates"]} == {
        "audio off": 600_000,
        "audio on": 900_000,
    }


async def test_other_v1_calls_still_need_a_key(client: httpx.AsyncClient) -> None:
    # The same app refuses a keyed call without a key: pricing is public by design.
    assert (await client.get("/v1/billing/balance")).status_code == 401


async def test_pricing_lists_the_rates_at_the_configured_margin() -> None:
    async for c in client_for(GatewaySettings(env="dev", margin_pct=50)):
        body = (await c.get("/v1/pricing")).json()
        assert body["margin_pct"] == 50
        sonnet = next(m for m in body["models"] if m["slug"] == "claude/sonnet-4-6")
        assert sonnet["rates"]["input"] == {"micros": 4_500_000, "usd": "4.50"}
