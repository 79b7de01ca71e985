"""Billing over HTTP on a real stack: a media call charged at the row its inputs hit
(B2), a key's spend limit (Z1: set at creation, changed, lifted, listed with what the
key spent this period) and the project's stop-at-zero policy, with every bad input a 400
naming what to fix. The limits at work on running agent jobs are in test_agent_runs.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from puras_cli.devstack import Stack
from stackapi import Api, bill_media_call, new_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _prefix(key: str) -> str:
    return key.removeprefix("puras_live_").split(".")[0]


def _keys(api: Api) -> dict[str, dict[str, Any]]:
    return {k["prefix"]: k for k in api.http.get("/v1/keys").json()["keys"]}


def test_a_media_call_is_charged_at_the_rate_its_inputs_hit(stack: Stack, api: Api) -> None:
    """The media endpoint records a job's generation as a ``job.media_usage`` event on the
    job's subject; billing prices it by the slug's table. openai/gpt-image-2 at medium
    quality, 1024x1536: published at 0.050 USD a call; two images: 100,000 micros."""
    job = api.run("echo", {"text": "a picture, please"})
    assert job["status"] == "succeeded"
    before = api.http.get("/v1/billing/balance").json()["credit_balance_micros"]
    inputs = {"prompt": "a dot", "quality": "medium", "size": "1024x1536", "num_images": 2}

    bill_media_call(stack.nats_url, api.project_id, job["id"], inputs)
    rows = api.http.get(f"/v1/jobs/{job['id']}/usage").json()["usage"]
    assert [(r["model"], r["billed_micros"]) for r in rows] == [("openai/gpt-image-2", 100_000)]
    costs = [e["payload"] for e in api.events(job["id"]) if e["type"] == "cost"]
    assert [c["billed_micros"] for c in costs] == [100_000]
    assert api.http.get(f"/v1/jobs/{job['id']}").json()["cost_micros"] == 100_000
    after = api.http.get("/v1/billing/balance").json()["credit_balance_micros"]
    assert before - after == 100_000


def test_a_key_is_created_with_a_limit_changed_and_lifted(api: Api) -> None:
    plain = api.http.post("/v1/keys")
    assert plain.status_code == 200, plain.text
    assert "spend_limit" not in plain.json()
    r = api.http.post("/v1/keys", json={"spend_limit": {"micros": 5_000_000, "period": "month"}})
    assert r.status_code == 200, r.text
    prefix = r.json()["prefix"]
    assert r.json()["spend_limit"] == {"micros": 5_000_000, "period": "month"}
    listed = _keys(api)
    assert listed[prefix]["spend_limit"] == {"micros": 5_000_000, "period": "month"}
    assert listed[prefix]["spent_micros"] == 0
    assert listed[plain.json()["prefix"]]["spend_limit"] is None
    changed = api.http.put(f"/v1/keys/{prefix}/spend_limit", json={"micros": 1, "period": "day"})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"prefix": prefix, "spend_limit": {"micros": 1, "period": "day"}}
    assert _keys(api)[prefix]["spend_limit"] == {"micros": 1, "period": "day"}
    lifted = api.http.delete(f"/v1/keys/{prefix}/spend_limit")
    assert lifted.json() == {"prefix": prefix, "spend_limit": None}
    assert _keys(api)[prefix]["spend_limit"] is None
    assert "spent_micros" not in _keys(api)[prefix]


def test_the_operator_gives_a_projects_first_key_a_limit(stack: Stack, admin: httpx.Client) -> None:
    pid = admin.post("/v1/admin/projects", json={"name": "limited"}).json()["id"]
    r = admin.post(
        f"/v1/admin/projects/{pid}/keys", json={"spend_limit": {"micros": 10, "period": "day"}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["spend_limit"] == {"micros": 10, "period": "day"}
    assert admin.post(f"/v1/admin/projects/{pid}/keys").status_code == 200


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"micros": -1, "period": "day"}, "micros"),
        ({"micros": 0, "period": "day"}, "micros"),
        ({"micros": 1.5, "period": "day"}, "micros"),
        ({"micros": "100", "period": "day"}, "micros"),
        ({"micros": 10**16, "period": "day"}, "micros"),
        ({"micros": 100, "period": "week"}, "period"),
        ({"micros": 100}, "period"),
        ({"micros": 100, "period": "day", "extra": 1}, "extra"),
    ],
)
def test_a_bad_limit_is_a_400_naming_the_field(api: Api, body: dict[str, Any], names: str) -> None:
    prefix = _prefix(api.key)
    r = api.http.put(f"/v1/keys/{prefix}/spend_limit", json=body)
    assert r.status_code == 400, r.text
    assert names in r.json()["error"]["message"]
    created = api.http.post("/v1/keys", json={"spend_limit": body})
    assert created.status_code == 400, created.text
    assert names in created.json()["error"]["message"]


def test_a_limit_on_a_key_not_of_this_project_is_a_404(stack: Stack, api: Api) -> None:
    other = new_api(stack, "other project")
    try:
        r = api.http.put(
            f"/v1/keys/{_prefix(other.key)}/spend_limit", json={"micros": 1, "period": "day"}
        )
        assert r.status_code == 404, r.text
        assert api.http.delete("/v1/keys/nosuchkey/spend_limit").status_code == 404
    finally:
        other.close()


def test_the_stop_at_zero_policy_is_read_and_set(api: Api) -> None:
    assert api.http.get("/v1/billing/policy").json() == {"stop_agents_at_zero": False}
    r = api.http.put("/v1/billing/policy", json={"stop_agents_at_zero": True})
    assert r.status_code == 200, r.text
    assert api.http.get("/v1/billing/policy").json() == {"stop_agents_at_zero": True}
    for bad in ({}, {"stop_agents_at_zero": 1}, {"stop_agents_at_zero": True, "x": 1}):
        r = api.http.put("/v1/billing/policy", json=bad)
        assert r.status_code == 400, (bad, r.text)
    assert api.http.put("/v1/billing/policy", content=b"").status_code == 400
