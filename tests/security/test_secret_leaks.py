"""Credentials never reach a log, a response or a file they were not meant for.

A whole stack runs a few jobs (one succeeds, two fail in user code); then every file the
stack wrote is searched for every credential of the run: the admin token, each NATS
identity's password, each Postgres role's password, the superuser's, the secrets
master key, and the project's full API key. Only the generated nats-server configuration
may hold NATS passwords, and it is private (mode 0600). Each service's environment holds
its own credentials only (the master key: the gateway's and the runners'); the runner's
none of Postgres.
"""

from __future__ import annotations

import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from puras_bundle import pack_project
from puras_cli.devstack import Stack
from puras_cli.devstack.stack import PROCESS_OF
from puras_common.bus.permissions import IDENTITIES
from puras_common.db import DB_ROLES

PROJECT_DIR = Path(__file__).resolve().parents[1] / "e2e" / "project"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    work = Path(tempfile.mkdtemp(prefix="puras-leaks-"))
    s = Stack(work, fsync=False, env={"PURAS_RUNNER_ACK_WAIT_S": "5"})
    try:
        s.start()
        yield s
    finally:
        s.stop()
        shutil.rmtree(work, ignore_errors=True)


def _secrets(stack: Stack, api_key: str) -> dict[str, str]:
    out = {"admin token": stack.admin_token, "API key": api_key}
    out["API key secret"] = api_key.split(".", 1)[1]
    out["secrets master key"] = stack.secrets_key
    for name in IDENTITIES:
        out[f"NATS password of {name}"] = stack.nats_password(name)
    for svc in DB_ROLES:
        out[f"Postgres password of {svc}"] = stack.database_password(svc)
    assert stack.postgres is not None
    out["Postgres superuser password"] = stack.postgres.superuser_password
    assert all(len(v) >= 16 for v in out.values())
    return out


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def test_no_credential_leaks_into_logs_files_or_responses(stack: Stack) -> None:
    project = stack.bootstrap_project(name="leaks", usd=1)
    bodies: list[bytes] = []
    with httpx.Client(
        base_url=stack.api_base,
        headers={"Authorization": f"Bearer {project.api_key}"},
        timeout=60,
    ) as http:
        r = http.post(
            "/v1/deployments",
            files={"bundle": ("b.zip", pack_project(PROJECT_DIR).data, "application/zip")},
        )
        assert r.status_code == 200, r.text
        bodies.append(r.content)
        outcomes = {}
        for skill, inputs in (("echo", {"text": "hi"}), ("boom", {}), ("badout", {})):
            r = http.post(
                "/v1/jobs",
                params={"wait": "true", "timeout": "45"},
                json={"skill": skill, "inputs": inputs},
            )
            assert r.status_code == 200, r.text
            bodies.append(r.content)
            outcomes[skill] = r.json()["status"]
            bodies.append(http.get(f"/v1/jobs/{r.json()['id']}/events").content)
        assert outcomes == {"echo": "succeeded", "boom": "failed", "badout": "failed"}
        # Refused credentials are not echoed back either.
        wrong = http.get("/v1/jobs", headers={"Authorization": f"Bearer {project.api_key}x"})
        assert wrong.status_code == 401
        bodies.append(wrong.content)
        # An operator creating a key sees it once; listing keys shows prefixes only.
        admin = {"Authorization": f"Bearer {stack.admin_token}"}
        r = http.post(f"/v1/admin/projects/{project.project_id}/keys", headers=admin)
        assert r.status_code == 200, r.text
        second_key = r.json()["key"]
        r = http.get("/v1/keys")
        assert r.status_code == 200, r.text
        bodies.append(r.content)
        assert second_key.split(".", 1)[1].encode() not in r.content

    secrets = _secrets(stack, project.api_key)
    pids = stack.service_pids()
    environs = {name: _environ(pid) for name, pid in pids.items()}
    config = stack.nats.config_file if stack.nats is not None else None
    assert config is not None
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    stack.stop()  # every log flushed and closed
    leaks: list[str] = []
    for body in bodies:
        leaks += [
            f"a response holds the {what}" for what, v in secrets.items() if v.encode() in body
        ]
    for path in sorted(p for p in stack.work_dir.rglob("*") if p.is_file()):
        if path == config:
            continue
        data = path.read_bytes()
        leaks += [f"{path} holds the {what}" for what, v in secrets.items() if v.encode() in data]
    assert leaks == []

    # Each service holds its own identity's credentials and no other's.
    for name, env in environs.items():
        process = name.split("-", 1)[0]
        # The gateway's projector runs as the gateway (its identity and role), without
        # the API's admin token or the secrets key.
        kind = PROCESS_OF.get(process, (process, ""))[0]
        values = set(env.values())
        held = {what for what, v in secrets.items() if v in values}
        mine = {f"NATS password of {kind}"}
        if kind in DB_ROLES:
            mine.add(f"Postgres password of {kind}")
        if process == "gateway":
            mine.add("admin token")
        if process in ("gateway", "runner"):
            mine.add("secrets master key")  # the one that seals, the ones that open
        assert held == mine, name
        if kind == "runner":
            assert not [k for k in env if "DATABASE" in k or k.startswith("PG")], env.keys()
