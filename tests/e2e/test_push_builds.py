"""Push-time builds (Z7): a deployment's requirements.txt is built before it is activated.

Needs network access to the package index (one small pure-Python package, as the other
venv tests). The build's outcome is read from the event log too: a second push with the
same file must be answered from the existing venv (``deployment.built`` with ``reused``).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from puras_cli.devstack import Stack
from stackapi import PROJECT_DIR, Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SIX = "six==1.16.0\n"


def project_with(tmp_path: Path, requirements: str, name: str = "p") -> Path:
    dst = tmp_path / name
    shutil.copytree(PROJECT_DIR, dst)
    (dst / "requirements.txt").write_text(requirements)
    (dst / "skills/echo/main.py").write_text(
        "import six\n\n\ndef run(inputs: dict) -> dict:\n"
        '    return {"echoed": inputs["text"] + " six " + six.__version__}\n'
    )
    return dst


def deployment_events(api: Api) -> list[dict[str, Any]]:
    """The envelopes on the project's deployments subject, oldest first."""

    async def read() -> list[dict[str, Any]]:
        nc = await nats.connect(api.nats_url)
        try:
            js = nc.jetstream()
            subject = f"ev.{api.project_id}.deployments.{api.project_id}"
            out: list[dict[str, Any]] = []
            seq = 1
            while True:
                try:
                    msg = await js.get_msg("PURAS_EVENTS", seq=seq, subject=subject, next=True)
                except NotFoundError:
                    return out
                out.append(json.loads(msg.data or b"{}"))
                seq = int(msg.seq or seq) + 1
        finally:
            await nc.close()

    return asyncio.run(read())


def listed(api: Api, dep_id: str) -> dict[str, Any]:
    deps = api.http.get("/v1/deployments").json()["deployments"]
    found: dict[str, Any] = next(d for d in deps if d["id"] == dep_id)
    return found


def outcome(api: Api, dep_id: str) -> dict[str, Any]:
    found = [
        e
        for e in deployment_events(api)
        if e["type"] in ("deployment.built", "deployment.build_failed")
        and e["data"]["deployment_id"] == dep_id
    ]
    assert len(found) == 1, found
    return found[0]


def test_a_resolvable_requirements_txt_is_built_then_activated(api: Api, tmp_path: Path) -> None:
    r = api.push(project_with(tmp_path, SIX), notes="with six")
    assert r.status_code == 200, r.text
    dep = r.json()
    assert (dep["status"], dep["error"], dep["active"]) == ("ready", None, True)
    assert listed(api, dep["id"])["status"] == "ready"
    job = api.run("echo", {"text": "a"})
    assert job["deployment_id"] == dep["id"]
    assert job["result"] == {"echoed": "a six 1.16.0"}

    # The same requirements.txt again: nothing is built, the venv is there.
    again = api.push(project_with(tmp_path, SIX, "p2"), notes="same file")
    assert again.status_code == 200, again.text
    second = again.json()
    assert (second["status"], second["active"]) == ("ready", True)
    assert outcome(api, second["id"])["data"]["reused"] is True
    assert api.run("echo", {"text": "b"})["deployment_id"] == second["id"]


def test_an_unresolvable_requirements_txt_fails_and_is_never_activated(
    api: Api, stack: Stack, tmp_path: Path
) -> None:
    active = api.http.get("/v1/skills").json()["deployment_id"]
    r = api.push(project_with(tmp_path, "puras-no-such-package-xyz==1.0\n"))
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "build_failed"
    dep = err["deployment"]
    assert (dep["status"], dep["active"]) == ("failed", False)
    assert "puras-no-such-package-xyz" in dep["error"]  # uv's own message
    assert "could not prepare the deployment's virtualenv" in dep["error"]
    for text in (err["message"], dep["error"]):
        assert "/tmp/" not in text
        assert str(stack.logs_dir.parent) not in text
        assert ".tmp-" not in text
    assert listed(api, dep["id"])["status"] == "failed"
    assert listed(api, dep["id"])["error"] == dep["error"]
    assert api.http.get("/v1/skills").json()["deployment_id"] == active
    again = api.http.post(f"/v1/deployments/{dep['id']}/activate")
    assert again.status_code == 409
    assert "build failed" in again.json()["error"]["message"]
    assert api.http.get("/v1/skills").json()["deployment_id"] == active


def test_an_async_push_answers_building_and_activates_once_built(api: Api, tmp_path: Path) -> None:
    # A file no earlier push of this stack built, so the build really happens.
    r = api.push(project_with(tmp_path, "six==1.15.0\n"), wait="false")
    assert r.status_code == 200, r.text
    dep = r.json()
    assert (dep["status"], dep["error"], dep["active"]) == ("building", None, False)
    # The runner records the build, then the activation the push asked for.
    assert wait_for_activation(api, dep["id"], timeout=300)
    assert (listed(api, dep["id"])["status"], listed(api, dep["id"])["active"]) == ("ready", True)
    assert outcome(api, dep["id"])["data"]["reused"] is False
    job = api.run("echo", {"text": "c"})
    assert (job["deployment_id"], job["result"]) == (dep["id"], {"echoed": "c six 1.15.0"})


def wait_for_activation(api: Api, dep_id: str, timeout: float) -> bool:
    """Follow the project's deployments subject (from its start) until ``dep_id`` is
    activated; the gateway's read view is asked only after that (read-your-writes)."""

    async def follow() -> bool:
        nc = await nats.connect(api.nats_url)
        try:
            js = nc.jetstream()
            sub = await js.subscribe(
                f"ev.{api.project_id}.deployments.{api.project_id}", ordered_consumer=True
            )
            async with asyncio.timeout(timeout):
                async for msg in sub.messages:
                    env = json.loads(msg.data)
                    if (
                        env["type"] == "deployment.activated"
                        and env["data"]["deployment_id"] == dep_id
                    ):
                        return True
            return False
        finally:
            await nc.close()

    if not asyncio.run(follow()):
        return False
    # The list reads the Postgres view: wait (bounded) until it shows the activation.
    for _ in range(100):
        if listed(api, dep_id)["active"]:
            return True
        api.http.get("/v1/skills")  # a round trip between looks, not a sleep
    return False
