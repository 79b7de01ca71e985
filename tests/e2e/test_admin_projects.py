"""The operator's view of projects and keys: list every project, list and revoke any
project's key with the admin token, over HTTP and through ``puras admin``."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from puras_cli.context import CliContext
from puras_cli.devstack import Stack
from puras_cli.main import cli
from stackapi import Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def puras_admin(stack: Stack, *args: str) -> Result:
    env = {"PURAS_API_BASE": stack.api_base, "PURAS_ADMIN_TOKEN": stack.admin_token}
    return CliRunner().invoke(cli, ["admin", *args], obj=CliContext(environ=env, cwd=Path("/")))


def test_the_operator_lists_projects_and_revokes_a_projects_key(
    stack: Stack, admin: httpx.Client
) -> None:
    pid = admin.post("/v1/admin/projects", json={"name": "ops-view"}).json()["id"]
    first = admin.post(f"/v1/admin/projects/{pid}/keys").json()
    second = admin.post(f"/v1/admin/projects/{pid}/keys").json()
    assert admin.post(f"/v1/admin/projects/{pid}/credits", json={"micros": 1234}).status_code == 200

    projects = admin.get("/v1/admin/projects").json()["projects"]
    mine = next(p for p in projects if p["id"] == pid)
    assert mine["name"] == "ops-view"
    assert mine["active_keys"] == 2
    assert mine["credit_balance_micros"] in (0, 1234)  # billing's projection may lag
    assert [p["created_at"] for p in projects] == sorted(
        (p["created_at"] for p in projects), reverse=True
    )

    listed = admin.get(f"/v1/admin/projects/{pid}/keys").json()["keys"]
    assert {k["prefix"] for k in listed} == {first["prefix"], second["prefix"]}
    assert all("key" not in k for k in listed)  # prefixes only, never a secret

    api = Api(stack.api_base, first["key"], pid)
    try:
        assert api.http.get("/v1/jobs").status_code == 200
        gone = admin.delete(f"/v1/admin/projects/{pid}/keys/{first['prefix']}")
        assert gone.json() == {"prefix": first["prefix"], "revoked": True}
        assert api.http.get("/v1/jobs").status_code == 401
    finally:
        api.close()
    again = admin.delete(f"/v1/admin/projects/{pid}/keys/{first['prefix']}")
    assert (again.status_code, again.json()["error"]["code"]) == (404, "key_not_found")
    # A key of another project is not this project's to revoke.
    other = admin.post("/v1/admin/projects", json={"name": "ops-other"}).json()["id"]
    crossed = admin.delete(f"/v1/admin/projects/{other}/keys/{second['prefix']}")
    assert crossed.status_code == 404
    missing = admin.get("/v1/admin/projects/no-such-project/keys")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "project_not_found")

    # The same through the CLI: a table by default, the API's answer with -o json.
    table = puras_admin(stack, "projects", "list")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split()[:2] == ["ID", "NAME"]
    assert any(line.startswith(pid) and "ops-view" in line for line in table.stdout.splitlines())
    keys = json.loads(puras_admin(stack, "keys", "list", pid, "-o", "json").stdout)
    assert [k["prefix"] for k in keys["keys"]] == [second["prefix"]]
    revoked = puras_admin(stack, "key", "revoke", pid, second["prefix"])
    assert revoked.exit_code == 0, revoked.output
    assert json.loads(revoked.stdout) == {"prefix": second["prefix"], "revoked": True}
    assert admin.get(f"/v1/admin/projects/{pid}/keys").json()["keys"] == []
    # Without the admin token: 401, whatever the project key.
    no_token = httpx.get(f"{stack.api_base}/v1/admin/projects")
    assert no_token.status_code == 401
