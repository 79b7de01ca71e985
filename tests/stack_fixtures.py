"""Fixtures for tests that run the whole stack over HTTP (imported by the conftest of
each folder that uses them): one stack per test module, a fresh funded project per test.
Each service runs as its own NATS identity; a module's stack fails at teardown if the
server refused any service a permission (a matrix that misses a subject shows up there)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from puras_cli.devstack import Stack
from stackapi import Api, new_api, start_stack, stop_stack

__all__ = ["admin", "api", "own_api", "own_stack", "serve_stack", "stack"]


def serve_stack(env: dict[str, str] | None = None) -> Iterator[Stack]:
    """The body of a module's ``stack`` fixture (a module that needs other settings
    defines its own with ``yield from serve_stack({...})``)."""
    s, work = start_stack(env=env)
    try:
        yield s
        violations = [
            line
            for line in (s.logs_dir / "nats-server.log").read_text().splitlines()
            if "Violation" in line and '"$G/user:ops"' not in line
        ]
        assert violations == [], "\n".join(violations[:20])
    finally:
        stop_stack(s, work)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    yield from serve_stack()


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


@pytest.fixture
def own_stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A stack of the test's own, for tests that kill or restart parts of it (settings
    through ``indirect`` parametrization: ``{"PURAS_RUNNER_MAX_ATTEMPTS": "1"}``)."""
    s, work = start_stack(getattr(request, "param", {}))
    try:
        yield s
    finally:
        stop_stack(s, work)


@pytest.fixture
def own_api(own_stack: Stack, request: pytest.FixtureRequest) -> Iterator[Api]:
    """A funded project on :func:`own_stack` with the test project deployed."""
    a = new_api(own_stack, request.node.name)
    assert a.push().status_code == 200
    try:
        yield a
    finally:
        a.close()
