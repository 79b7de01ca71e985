"""End-to-end fixtures: the whole stack (nats-server, Postgres, five services) over HTTP.

One stack per test module (starting one takes a few seconds); a fresh project per test,
so tests never see each other's jobs. Short ack wait and heartbeats let the lost-runner
tests finish in seconds. Helpers live in ``stackapi.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from puras_cli.devstack import Stack
from stackapi import Api, new_api, start_stack, stop_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s, work = start_stack()
    try:
        yield s
    finally:
        stop_stack(s, work)


@pytest.fixture
def api(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Api]:
    """A fresh funded project with the test project deployed and active."""
    a = new_api(stack, request.node.name)
    r = a.push(notes="e2e")
    assert r.status_code == 200, r.text
    try:
        yield a
    finally:
        a.close()


@pytest.fixture
def admin(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=stack.api_base, headers={"Authorization": f"Bearer {stack.admin_token}"}
    ) as c:
        yield c
