"""Deployments: push, list newest first, rolling activation, rollback, delete (P1-P3)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from stackapi import PROJECT_DIR, Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def v2_project(tmp_path: Path) -> Path:
    dst = tmp_path / "v2"
    shutil.copytree(PROJECT_DIR, dst)
    (dst / "skills/echo/main.py").write_text(
        'def run(inputs: dict) -> dict:\n    return {"echoed": inputs["text"] + " v2"}\n'
    )
    return dst


def test_push_returns_the_deployment_and_its_skills(api: Api) -> None:
    r = api.push(notes="second")
    assert r.status_code == 200
    dep = r.json()
    assert dep["id"]
    assert dep["notes"] == "second"
    assert dep["active"] is True
    names = [s["name"] for s in dep["skills"]]
    assert names == sorted(["echo", "boom", "nap", "stuck", "badout"])
    assert {s["kind"] for s in dep["skills"]} == {"deterministic"}
    skills = api.http.get("/v1/skills").json()
    assert skills["deployment_id"] == dep["id"]
    echo = next(s for s in skills["skills"] if s["name"] == "echo")
    assert echo["input_schema"]["required"] == ["text"]


def test_activation_rollback_and_pinning(api: Api, tmp_path: Path) -> None:
    v1 = api.http.get("/v1/deployments").json()["deployments"][0]["id"]
    v2 = api.push(v2_project(tmp_path), notes="v2").json()["id"]
    listed = api.http.get("/v1/deployments").json()["deployments"]
    assert [d["id"] for d in listed] == [v2, v1]
    assert [d["active"] for d in listed] == [True, False]
    assert api.run("echo", {"text": "a"})["result"] == {"echoed": "a v2"}
    # A job submitted on v2 keeps v2 even when v1 becomes active while it runs (P2).
    inflight = api.submit("nap", {"seconds": 2}).json()
    assert inflight["deployment_id"] == v2
    api.wait_for_event(inflight["id"], "started")
    r = api.http.post(f"/v1/deployments/{v1}/activate")
    assert r.status_code == 200
    assert r.json()["active"] is True
    after = api.run("echo", {"text": "b"})
    assert after["result"] == {"echoed": "b"}
    assert after["deployment_id"] == v1
    done = api.wait_terminal(inflight["id"])
    assert done["status"] == "succeeded"
    assert done["deployment_id"] == v2


def test_push_without_activate_keeps_the_active_one(api: Api, tmp_path: Path) -> None:
    active = api.http.get("/v1/deployments").json()["deployments"][0]["id"]
    r = api.push(v2_project(tmp_path), activate="false")
    assert r.status_code == 200
    assert r.json()["active"] is False
    assert api.run("echo", {"text": "c"})["deployment_id"] == active


def test_delete_refuses_the_active_one_and_removes_others(api: Api, tmp_path: Path) -> None:
    old = api.http.get("/v1/deployments").json()["deployments"][0]["id"]
    new = api.push(v2_project(tmp_path)).json()["id"]
    r = api.http.delete(f"/v1/deployments/{new}")
    assert r.status_code == 409
    assert "active" in r.json()["error"]["message"]
    r = api.http.delete(f"/v1/deployments/{old}")
    assert r.status_code == 200
    assert [d["id"] for d in api.http.get("/v1/deployments").json()["deployments"]] == [new]
    assert api.http.post(f"/v1/deployments/{old}/activate").status_code == 404
