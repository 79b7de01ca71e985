"""Attacks on project secrets (X1, X2) over a whole stack: another project's key can
neither list, overwrite nor delete a project's secrets nor run with them; crafted names
are 4xx, never 500; a project key cannot rotate the master key; and a ciphertext copied
onto another project's subject (by someone able to write the log) opens for nobody.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from puras_cli.devstack import Stack
from puras_common.bus import connect
from puras_common.events import decode_envelope, decode_event
from puras_common.events.ids import secret_set_id
from puras_common.events.subjects import AGG_SECRET, event_subject
from puras_common.events.types import SecretSet
from stackapi import Api, new_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PROJECT = Path(__file__).resolve().parents[1] / "e2e" / "secrets_project"


@pytest.fixture
def pair(stack: Stack) -> Iterator[tuple[Api, Api]]:
    a = new_api(stack, f"victim-{uuid.uuid4().hex[:8]}")
    b = new_api(stack, f"attacker-{uuid.uuid4().hex[:8]}")
    try:
        for api in (a, b):
            assert api.push(PROJECT, notes="secrets").status_code == 200
        yield a, b
    finally:
        a.close()
        b.close()


def _names(api: Api) -> list[str]:
    return [s["name"] for s in api.http.get("/v1/secrets").json()["secrets"]]


def test_another_projects_key_cannot_read_change_or_delete(pair: tuple[Api, Api]) -> None:
    victim, attacker = pair
    value = f"victim-{secrets.token_urlsafe(24)}"
    assert victim.http.put("/v1/secrets/VICTIM_TOKEN", json={"value": value}).status_code == 200
    assert _names(attacker) == []
    assert attacker.http.delete("/v1/secrets/VICTIM_TOKEN").status_code == 404
    # The same name in the attacker's project is the attacker's own secret, nothing more.
    mine = "attacker-value-" + secrets.token_urlsafe(8)
    assert attacker.http.put("/v1/secrets/VICTIM_TOKEN", json={"value": mine}).status_code == 200
    job = attacker.run("reveal", {"name": "VICTIM_TOKEN"})
    assert job["result"]["length"] == len(mine)
    theirs = victim.run("reveal", {"name": "VICTIM_TOKEN"})
    assert theirs["result"]["length"] == len(value)
    assert _names(victim) == ["VICTIM_TOKEN"]
    # A job id of the victim's is not the attacker's to read (it would be masked anyway).
    assert attacker.http.get(f"/v1/jobs/{theirs['id']}/events").status_code == 404
    for api in (victim, attacker):
        for job_id in (job["id"], theirs["id"]):
            r = api.http.get(f"/v1/jobs/{job_id}/events")
            assert value not in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/secrets/..%2F..%2Fv1%2Fkeys",
        "/v1/secrets/A%00B",
        "/v1/secrets/%C3%A9T%C3%A9",
        "/v1/secrets/" + "A" * 5000,
        "/v1/secrets/A.B",
        "/v1/secrets/*",
        "/v1/secrets/>",
    ],
)
def test_crafted_names_are_refused_not_crashed_on(pair: tuple[Api, Api], path: str) -> None:
    victim, _ = pair
    for method in ("PUT", "DELETE"):
        r = victim.http.request(method, path, json={"value": "x-value-1"})
        assert 400 <= r.status_code < 500, (method, path, r.status_code, r.text)
        assert r.json()["error"]["code"]


def test_a_project_key_cannot_rotate_the_master_key(stack: Stack, pair: tuple[Api, Api]) -> None:
    victim, _ = pair
    assert victim.http.post("/v1/admin/secrets/rotate").status_code == 401
    with httpx.Client(base_url=stack.api_base, timeout=30) as anon:
        assert anon.post("/v1/admin/secrets/rotate").status_code == 401


async def _copy_ciphertext(nats_url: str, src: str, dst: str, name: str) -> None:
    """As an operator-level writer of the log: the victim's sealed value, recorded on the
    attacker's subject."""
    bus = await connect(nats_url, name="test-secret-copy")
    try:
        last = await bus.last_subject_message(event_subject(src, AGG_SECRET, name))
        assert last is not None
        event = decode_event(decode_envelope(last[1]))
        assert isinstance(event, SecretSet)
        await bus.append(
            event,
            project_id=dst,
            aggregate=AGG_SECRET,
            aggregate_id=name,
            event_id=secret_set_id(name, uuid.uuid4().hex),
        )
    finally:
        await bus.close()


def test_a_ciphertext_copied_to_another_project_opens_for_nobody(
    stack: Stack, pair: tuple[Api, Api]
) -> None:
    victim, attacker = pair
    value = f"victim-{secrets.token_urlsafe(24)}"
    assert victim.http.put("/v1/secrets/COPIED", json={"value": value}).status_code == 200
    asyncio.run(_copy_ciphertext(stack.nats_url, victim.project_id, attacker.project_id, "COPIED"))
    job = attacker.run("reveal", {"name": "COPIED"})
    assert job["status"] == "failed"
    assert "does not open" in job["error"]
    assert value not in json.dumps(attacker.events(job["id"]))
    # The victim's own jobs are unaffected.
    assert victim.run("reveal", {"name": "COPIED"})["result"]["length"] == len(value)
