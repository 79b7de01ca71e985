"""URL inputs of an unconfined job follow the operator's ``egress_allow_networks``.

With ``sandbox=off`` there is no egress proxy between a job and the network, so the
SDK's own check is the only one: the runner hands the setting to every job as
``PURAS_ALLOW_PRIVATE_URLS`` (the proxy applies the same setting to sandboxed jobs, see
``tests/security/sandbox``). A loopback HTTP server stands in for an internal service.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from runner_helpers import Harness, StartRunner, skill_files

pytestmark = pytest.mark.integration

FETCH = """
    from puras import PurasError, load_bytes

    def run(inputs):
        try:
            return {"body": load_bytes(inputs["url"]).decode()}
        except PurasError as exc:
            return {"refused": str(exc)}
"""


@pytest.fixture
async def internal_url() -> AsyncIterator[str]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/data.txt"


class _Secrets:
    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values

    async def secrets_for(self, project_id: str) -> Mapping[str, str]:
        return self.values


async def _fetch(harness: Harness, url: str) -> dict[str, Any]:
    dep = await harness.deploy(skill_files("fetch", FETCH))
    watch = await harness.run(dep, "fetch", {"url": url})
    (done,) = watch.of("job.succeeded")
    result: dict[str, Any] = done.result
    return result


async def test_an_allowed_network_is_reached(
    harness: Harness, start: StartRunner, internal_url: str
) -> None:
    await start(sandbox="off", egress_allow_networks=["127.0.0.0/8"])
    assert await _fetch(harness, internal_url) == {"body": "hello"}


async def test_by_default_a_loopback_address_is_refused_naming_the_setting(
    harness: Harness, start: StartRunner, internal_url: str
) -> None:
    await start(sandbox="off")
    refused = (await _fetch(harness, internal_url))["refused"]
    assert "127.0.0.1, a loopback address" in refused
    assert "PURAS_RUNNER_EGRESS_ALLOW_NETWORKS" in refused


async def test_a_project_secret_cannot_lift_the_refusal(
    harness: Harness, start: StartRunner, internal_url: str
) -> None:
    await start(_Secrets({"PURAS_ALLOW_PRIVATE_URLS": "1"}), sandbox="off")
    assert "a loopback address" in (await _fetch(harness, internal_url))["refused"]
