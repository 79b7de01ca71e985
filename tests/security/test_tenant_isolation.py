"""Tenant against tenant over the API: another project's ids are 404 everywhere (never
403: an id's existence is not told), a revoked key fails at once, and a job's own output,
however large, neither reaches nor stops anyone else."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from puras_cli.devstack import Stack
from stackapi import Api, new_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def err(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    message: str = r.json()["error"]["message"]
    return message


def test_another_projects_ids_are_404_everywhere(api: Api, stack: Stack) -> None:
    other = new_api(stack, "other-tenant")
    try:
        assert other.push().status_code == 200
        done = other.run("echo", {"text": "secret"})
        running = other.submit("nap", {"seconds": 30}).json()
        other.wait_for_event(running["id"], "started")
        dep = done["deployment_id"]
        for job in (done["id"], running["id"]):
            err(api.http.get(f"/v1/jobs/{job}"), 404)
            err(api.http.get(f"/v1/jobs/{job}/events"), 404)
            err(api.http.get(f"/v1/jobs/{job}/stream"), 404)
            err(api.http.post(f"/v1/jobs/{job}/cancel"), 404)
        err(api.http.post(f"/v1/deployments/{dep}/activate"), 404)
        err(api.http.delete(f"/v1/deployments/{dep}"), 404)
        theirs = other.http.get("/v1/keys").json()["keys"][0]["prefix"]
        err(api.http.delete(f"/v1/keys/{theirs}"), 404)
        # Nor may a key set or lift another project's key's spend limit (Z1).
        limit = {"micros": 1, "period": "day"}
        err(api.http.put(f"/v1/keys/{theirs}/spend_limit", json=limit), 404)
        err(api.http.delete(f"/v1/keys/{theirs}/spend_limit"), 404)
        assert other.http.get("/v1/keys").json()["keys"][0]["spend_limit"] is None
        listed = {j["id"] for j in api.http.get("/v1/jobs", params={"limit": 100}).json()["jobs"]}
        assert not listed & {done["id"], running["id"]}
        # Nothing of ours touched theirs: the running job is still running, the key works.
        assert other.http.get(f"/v1/jobs/{running['id']}").json()["status"] == "running"
        assert other.http.post(f"/v1/jobs/{running['id']}/cancel").status_code == 200
    finally:
        other.close()


def test_a_revoked_key_fails_at_once(api: Api) -> None:
    new = api.http.post("/v1/keys").json()
    assert new["key"].startswith(f"puras_live_{new['prefix']}.")
    listed = api.http.get("/v1/keys").json()["keys"]
    assert {k["prefix"] for k in listed} >= {new["prefix"]}
    # Never the secret or its hash; a limited key also shows its limit and spend.
    shown = {"prefix", "created_at", "last_used_at", "spend_limit", "spent_micros"}
    assert all({"prefix", "created_at", "last_used_at"} <= set(k) <= shown for k in listed)
    other = httpx.Client(base_url=api.base, headers={"Authorization": f"Bearer {new['key']}"})
    assert other.get("/v1/jobs").status_code == 200
    assert api.http.delete(f"/v1/keys/{new['prefix']}").status_code == 200
    assert "revoked" in err(other.get("/v1/jobs"), 401)
    assert new["prefix"] not in {k["prefix"] for k in api.http.get("/v1/keys").json()["keys"]}
    err(api.http.delete(f"/v1/keys/{new['prefix']}"), 404)


LOUD = """
import sys

def run(inputs):
    chunk = "x" * 1023 + "\\n"
    for _ in range(inputs["kib"]):
        sys.stdout.write(chunk)
    if inputs.get("result_kib"):
        return {"big": "y" * (inputs["result_kib"] * 1024)}
    return {"ok": True}
"""


def _project(tmp_path: Path, name: str, code: str) -> Path:
    skill = tmp_path / "skills" / name
    skill.mkdir(parents=True)
    (skill / "skill.yaml").write_text(
        f"description: {name}\nentrypoint: main.py:run\ntimeout_seconds: 60\n"
    )
    (skill / "main.py").write_text(textwrap.dedent(code))
    return tmp_path


def test_huge_output_and_results_stop_nobody(api: Api, stack: Stack, tmp_path: Path) -> None:
    loud = new_api(stack, "loud-tenant")
    try:
        assert loud.push(_project(tmp_path, "loud", LOUD)).status_code == 200
        # 50 MiB of stdout: kept to the log cap, read and dropped beyond it.
        flood = loud.run("loud", {"kib": 50 * 1024})
        assert flood["status"] == "succeeded", flood
        logged: list[Any] = [e for e in loud.events(flood["id"]) if e["type"] == "log"]
        assert logged
        assert logged[-1]["payload"].get("truncated") is True
        # A 5 MiB result: over the limit, a clear error, not a crash.
        big = loud.run("loud", {"kib": 0, "result_kib": 5 * 1024})
        assert big["status"] == "failed"
        assert big["error"].startswith("result is too large")
        # Meanwhile and afterwards, another tenant is served as usual.
        assert api.run("echo", {"text": "still here"})["status"] == "succeeded"
    finally:
        loud.close()
