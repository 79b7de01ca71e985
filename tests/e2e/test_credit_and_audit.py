"""Credit gating (J7) and rebuilding projections from the log (ARCHITECTURE §3)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from puras_cli.commands.admin_rebuild import all_projections
from puras_cli.devstack import Stack
from stackapi import PROJECT_DIR, Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_a_job_without_credit_waits_and_starts_once_credit_is_granted(
    stack: Stack, admin: httpx.Client
) -> None:
    pid = admin.post("/v1/admin/projects", json={"name": "broke"}).json()["id"]
    key = admin.post(f"/v1/admin/projects/{pid}/keys").json()["key"]
    api = Api(stack.api_base, key, pid)
    try:
        assert api.push(PROJECT_DIR).status_code == 200
        assert api.http.get("/v1/billing/balance").json() == {"credit_balance_micros": 0}
        job = api.submit("echo", {"text": "patience"}, wait="true", timeout=1).json()
        assert job["status"] == "queued"
        queued = api.events(job["id"])
        assert queued[0]["type"] == "queued"
        assert queued[0]["payload"].get("held") is True
        # Z8: the job itself says why it waits, and stops saying so once it runs.
        held = api.http.get(f"/v1/jobs/{job['id']}").json()
        assert (held["status"], held["held_reason"]) == (
            "queued",
            "waiting for credit: the project's balance is zero or below; "
            "the job starts by itself once credit is granted",
        )
        grant = admin.post(f"/v1/admin/projects/{pid}/credits", json={"usd": 0.5})
        assert grant.status_code == 200
        assert grant.json()["granted_micros"] == 500_000
        final = api.wait_terminal(job["id"])
        assert final["status"] == "succeeded"
        assert final["held_reason"] is None
        assert api.http.get("/v1/billing/balance").json() == {"credit_balance_micros": 500_000}
    finally:
        api.close()


def test_prices_are_public(stack: Stack) -> None:
    # B2, T1: no key at all; the gateway runs at the default margin.
    r = httpx.get(f"{stack.api_base}/v1/pricing", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["margin_pct"] == 20
    assert body["version"]
    sonnet = next(m for m in body["models"] if m["slug"] == "claude/sonnet-4-6")
    assert sonnet["rates"]["input"]["micros"] == 3_600_000
    assert "openai/gpt-image-2" in {m["slug"] for m in body["media"]}


def test_a_grant_answers_with_the_balance_billing_recorded(
    stack: Stack, admin: httpx.Client
) -> None:
    pid = admin.post("/v1/admin/projects", json={"name": "granted"}).json()["id"]
    first = admin.post(f"/v1/admin/projects/{pid}/credits", json={"micros": 700, "note": "a"})
    assert first.status_code == 200, first.text
    assert first.json()["granted_micros"] == 700
    assert first.json()["credit_balance_micros"] == 700
    second = admin.post(f"/v1/admin/projects/{pid}/credits", json={"usd": "0.0003"})
    assert second.json()["credit_balance_micros"] == 1_000
    assert second.json()["grant_id"] != first.json()["grant_id"]


def test_a_grant_sent_while_billing_is_down_lands_once_it_is_back(
    stack: Stack, admin: httpx.Client
) -> None:
    # Billing is the ledger's one writer: the gateway accepts the grant (the command is
    # durable) but cannot show a balance it does not have; the held job waits for it.
    pid = admin.post("/v1/admin/projects", json={"name": "billing-down"}).json()["id"]
    key = admin.post(f"/v1/admin/projects/{pid}/keys").json()["key"]
    api = Api(stack.api_base, key, pid)
    try:
        assert api.push(PROJECT_DIR).status_code == 200
        job = api.submit("echo", {"text": "later"}).json()
        stack.kill_service("billing", signal.SIGKILL)
        try:
            grant = admin.post(f"/v1/admin/projects/{pid}/credits", json={"micros": 900})
        finally:
            stack.start_service("billing")
        assert grant.status_code == 200, grant.text
        assert grant.json()["granted_micros"] == 900
        assert "credit_balance_micros" not in grant.json()
        assert api.wait_terminal(job["id"])["status"] == "succeeded"
        # The projection is ordered: once it shows this later grant, it has the first.
        more = admin.post(f"/v1/admin/projects/{pid}/credits", json={"micros": 100})
        assert more.json()["credit_balance_micros"] == 1_000
    finally:
        api.close()


def test_rebuild_from_the_log_equals_the_live_tables(stack: Stack, api: Api) -> None:
    for i in range(3):
        done = api.run("echo", {"text": str(i)})
    api.run("boom", {})
    # Feedback rows too, one of them given again (J9's upsert must rebuild the same).
    for body in (
        {"rating": 1, "end_user_id": "u"},
        {"comment": "hm"},
        {"rating": -1, "end_user_id": "u"},
    ):
        assert api.http.post(f"/v1/jobs/{done['id']}/feedback", json=body).status_code == 200
    env = {
        "PURAS_NATS_URL": stack.nats_url,
        "PURAS_DATABASE_URL": stack.database_url,
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [str(Path(sys.executable).parent / "puras"), "admin", "rebuild", "all"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    names = set(all_projections())
    assert {"jobs", "deployments", "keys", "feedback", "ledger", "drive"} <= names
    for name in names:
        assert f"projection {name}: rebuilt" in out.stdout
    assert "DIFFERENT" not in out.stdout
    assert out.stdout.count("result: EQUAL") == len(names)
