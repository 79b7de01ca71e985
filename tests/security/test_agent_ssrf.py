"""The agent's outbound fetches (web_fetch, download_url, URL attachments) cannot reach
inside the operator's network.

The runner makes these requests from the host, so a model (or a prompt injected into a
page it read) that asks for the cloud metadata address, a loopback admin port or a
private service must be refused before any connection is made: every test here also
records each TCP connection attempted in the process and requires there was none to a
refused address (and no request at all reached the servers that must stay unreached).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from loopback_http import LoopbackServer, Reply, serve

from puras_runner.adapters.fetch import SafeFetcher
from puras_runner.domain.agent.errors import FetchFailed

MB = 1024 * 1024


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address a socket of this process tries to connect to during the test."""
    attempted: list[Any] = []
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def recording_connect(self: socket.socket, address: Any) -> None:
        attempted.append(address)
        connect(self, address)

    def recording_connect_ex(self: socket.socket, address: Any) -> int:
        attempted.append(address)
        return connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", recording_connect_ex)
    return attempted


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    with serve({"/": lambda _: Reply(body=b"admin console")}) as srv:
        yield srv


async def _refused(fetcher: SafeFetcher, url: str) -> str:
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get(url, max_bytes=MB, timeout_s=5)
    return str(caught.value)


async def test_a_loopback_port_is_refused(loopback: LoopbackServer, connections: list[Any]) -> None:
    message = await _refused(SafeFetcher(), loopback.url("/"))
    assert message.startswith("refused: 127.0.0.1 resolves to a loopback address (127.0.0.1);")
    assert "public addresses only" in message
    assert loopback.seen == []
    assert connections == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://localhost/", "a loopback"),
        ("http://[::1]/", "a loopback"),
        ("http://[::ffff:127.0.0.1]/", "a loopback"),
        ("http://2130706433/", "a loopback"),  # 127.0.0.1 written as one number
        ("http://169.254.169.254/latest/meta-data", "a link-local"),
        ("http://[fe80::1]/", "a link-local"),
        ("http://10.0.0.1/", "a private"),
        ("https://192.168.1.1/admin", "a private"),
        ("http://172.16.0.1/", "a private"),
        ("http://[fd00::1]/", "a private"),
        ("http://0.0.0.0:8000/", "an unspecified"),
        ("http://100.64.0.1/", "a non-public"),  # carrier-grade NAT
        ("http://224.0.0.1/", "a multicast"),
    ],
)
async def test_non_public_addresses_are_refused(
    url: str, kind: str, connections: list[Any]
) -> None:
    message = await _refused(SafeFetcher(), url)
    assert message.startswith("refused: ")
    assert f"resolves to {kind} address" in message
    assert connections == []


async def test_a_name_that_resolves_to_loopback_is_refused(connections: list[Any]) -> None:
    async def dns(host: str, port: int) -> list[str]:
        return ["127.0.0.1"] if host == "innocent.example" else []

    message = await _refused(SafeFetcher(resolver=dns), "https://innocent.example/page")
    assert message.startswith(
        "refused: innocent.example resolves to a loopback address (127.0.0.1);"
    )
    assert connections == []


async def test_one_private_address_among_public_ones_refuses_the_name(
    connections: list[Any],
) -> None:
    # Checked all before any connection: not even the public address is tried.
    async def dns(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.1.2.3"]

    message = await _refused(SafeFetcher(resolver=dns), "http://mixed.example/")
    assert "a private address (10.1.2.3)" in message
    assert connections == []


async def test_the_checked_address_is_the_one_connected_to(
    loopback: LoopbackServer, connections: list[Any]
) -> None:
    # A rebinding DNS server would answer an allowed address first and an internal one
    # the next time: the fetch resolves once, so the second answer is never asked for.
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])

    async def rebinding_dns(host: str, port: int) -> list[str]:
        return next(answers)

    fetcher = SafeFetcher(allow_networks=["127.0.0.1/32"], resolver=rebinding_dns)
    got = await fetcher.get(f"http://rebind.example:{loopback.port}/", max_bytes=MB, timeout_s=5)
    assert got.data == b"admin console"
    assert [a[0] for a in connections] == ["127.0.0.1"]
    assert next(answers) == ["10.0.0.1"]  # never consumed


async def test_a_redirect_from_an_allowed_address_to_loopback_is_refused(
    loopback: LoopbackServer, connections: list[Any]
) -> None:
    # The first server stands for a public site (its address is the only one allowed);
    # it sends the fetch on to a loopback address that is not.
    target = loopback.url("/")
    with serve({"/": lambda _: Reply(302, headers={"Location": target})}, "127.0.0.2") as hop:
        fetcher = SafeFetcher(allow_networks=["127.0.0.2/32"])
        message = await _refused(fetcher, hop.url("/"))
    assert message.startswith("refused: 127.0.0.1 resolves to a loopback address (127.0.0.1);")
    assert [s.path for s in hop.seen] == ["/"]
    assert loopback.seen == []
    assert [a[0] for a in connections] == ["127.0.0.2"]


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "gopher://127.0.0.2:70/", "http://u:p@127.0.0.2/"]
)
async def test_a_redirect_to_another_scheme_or_to_credentials_is_refused(
    location: str,
) -> None:
    with serve({"/": lambda _: Reply(302, headers={"Location": location})}, "127.0.0.2") as hop:
        fetcher = SafeFetcher(allow_networks=["127.0.0.2/32"])
        message = await _refused(fetcher, hop.url("/"))
    assert "only http:// and https://" in message or "user name or password" in message
    assert len(hop.seen) == 1


async def test_the_runners_proxy_environment_is_not_used(
    loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch, connections: list[Any]
) -> None:
    # A proxy in the runner's env would see the fetch go out from elsewhere, unchecked.
    monkeypatch.setenv("HTTP_PROXY", loopback.url("/"))
    monkeypatch.setenv("ALL_PROXY", loopback.url("/"))
    await _refused(SafeFetcher(), "http://10.0.0.1/")
    assert loopback.seen == []
    assert connections == []
