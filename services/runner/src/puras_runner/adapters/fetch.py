"""The agent's outbound GETs (``web_fetch``, ``download_url``, URL attachments) under the
SSRF policy.

The runner itself makes these requests, from the host's network, so the same rule as the
job sandbox's egress proxy (:mod:`puras_runner.adapters.egress`) and the SDK's fetch
(``puras._fetch``) applies: http and https only, no credentials in the URL, the host
resolved by us and every address it resolves to public (:func:`puras._netpolicy.refusal`)
unless its network is one the operator allows (``egress_allow_networks``). The check
lives in the connection's network backend, so no TCP connection of a fetch is ever made
to an address that was not checked, and it goes to the very address that was checked:
a DNS server answering differently a second time (rebinding) is never asked again. TLS
still runs against the URL's host name (SNI and the certificate check), because httpcore
starts TLS over our stream with the origin's host.

Redirects are followed here, not by httpx, so each hop's scheme is checked as the first
one's (its address is checked when its connection opens). The body is streamed under a
byte cap and the whole fetch under one deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Final

import httpcore
import httpx

from puras._netpolicy import refusal
from puras_common.logging import get_logger
from puras_runner.app.ports import Fetched
from puras_runner.domain.agent.errors import FetchFailed

__all__ = ["MAX_REDIRECTS", "USER_AGENT", "Resolver", "SafeFetcher", "system_resolver"]

MAX_REDIRECTS: Final = 5
USER_AGENT: Final = "Mozilla/5.0 (compatible; Puras-Agent/0.1; +web_fetch)"
"""Names Puras; the ``compatible`` form keeps sites that refuse unknown agents answering."""

_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_ALLOW_SETTING: Final = "PURAS_RUNNER_EGRESS_ALLOW_NETWORKS"

log = get_logger(__name__)

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``: how host names become addresses (tests pass a fake DNS)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver, each once, in its order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class SafeFetcher:
    """:class:`~puras_runner.app.ports.Fetcher` over httpx, public addresses only."""

    def __init__(
        self,
        *,
        allow_networks: Sequence[str] = (),
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        """``allow_networks``: CIDRs (``10.0.0.0/8``) reachable although not public, as
        the runner's ``egress_allow_networks``; a bad one raises ``ValueError``.
        ``ssl_context``: the certificates trusted (default: the system's CA bundle)."""
        networks: list[IPNetwork] = []
        for raw in allow_networks:
            try:
                networks.append(ipaddress.ip_network(raw.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"allow_networks: {raw!r} is not a network (write it as 10.0.0.0/8 or fd00::/8)"
                ) from None
        self._backend = _CheckedBackend(tuple(networks), resolver or system_resolver)
        self._ssl = ssl_context or httpx.create_ssl_context()
        self._user_agent = user_agent

    async def get(self, url: str, *, max_bytes: int, timeout_s: float) -> Fetched:
        try:
            async with asyncio.timeout(timeout_s):
                return await self._get(url, max_bytes, timeout_s)
        except TimeoutError:
            raise FetchFailed(f"fetching {_shown(url)} took longer than {timeout_s:g} s") from None

    async def _get(self, url: str, max_bytes: int, timeout_s: float) -> Fetched:
        current = _checked_url(url)
        async with self._client(timeout_s) as client:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    async with client.stream("GET", current) as response:
                        if response.status_code in _REDIRECTS:
                            location = response.headers.get("Location", "").strip()
                            if not location:
                                raise FetchFailed(
                                    f"{_shown(str(current))} answered HTTP "
                                    f"{response.status_code} without a Location"
                                )
                            # (httpx already refused a Location that is no URL.)
                            current = _checked_url(str(current.join(location)))
                            continue
                        if response.status_code >= 400:
                            raise FetchFailed(
                                f"HTTP {response.status_code} from {_shown(str(current))}"
                            )
                        data = await _body(response, max_bytes, str(current))
                        media_type, charset = _content_type(
                            response.headers.get("Content-Type", "")
                        )
                        return Fetched(
                            url=str(current),
                            status=response.status_code,
                            media_type=media_type,
                            data=data,
                            charset=charset,
                        )
                except (httpcore.TimeoutException, httpx.TimeoutException):
                    raise FetchFailed(
                        f"fetching {_shown(str(current))} took longer than {timeout_s:g} s"
                    ) from None
                except (httpcore.ConnectError, httpx.ConnectError) as exc:
                    raise FetchFailed(
                        f"cannot connect to {current.host} for {_shown(str(current))}: {exc}"
                    ) from None
                except (httpcore.NetworkError, httpcore.ProtocolError, httpx.HTTPError) as exc:
                    raise FetchFailed(f"fetching {_shown(str(current))} failed: {exc}") from None
        raise FetchFailed(f"{_shown(url)} redirected more than {MAX_REDIRECTS} times")

    @asynccontextmanager
    async def _client(self, timeout_s: float) -> AsyncIterator[httpx.AsyncClient]:
        # One pool per fetch: nothing to close at shutdown, and a fetch's connections
        # never outlive it.
        pool = httpcore.AsyncConnectionPool(
            ssl_context=self._ssl,
            network_backend=self._backend,
            max_connections=4,
        )
        client = httpx.AsyncClient(
            transport=_PoolTransport(pool),
            # The runner's own HTTP(S)_PROXY / .netrc must not steer the model's fetches.
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": self._user_agent, "Accept": "*/*"},
        )
        async with client:
            yield client


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """Resolves each host itself, checks every address, and connects to one of those
    very addresses (the only way a fetch opens a connection)."""

    def __init__(self, allow: tuple[IPNetwork, ...], resolver: Resolver) -> None:
        self._allow = allow
        self._resolve = resolver
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        host = host.strip("[]")
        try:
            addresses = await self._resolve(host, port)
        except (OSError, UnicodeError) as exc:
            raise FetchFailed(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise FetchFailed(f"cannot resolve {host}: no address")
        # Every address, not just the first: a name with one public and one private
        # address would otherwise reach the private one when the first fails.
        for address in addresses:
            self._check(host, address)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def _check(self, host: str, address: str) -> None:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            raise FetchFailed(f"refused: {host} resolves to {address!r}, not an address") from None
        if any(ip in network for network in self._allow):
            return
        label = refusal(ip)
        if label is not None:
            # The host only: a URL's path and query may hold a signed token.
            log.info("agent fetch refused", host=host, address=address, kind=label)
            raise FetchFailed(
                f"refused: {host} resolves to {label} address ({address}); fetches reach "
                "public addresses only (the operator can allow a network with "
                f"{_ALLOW_SETTING})"
            )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise FetchFailed("refused: fetches do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PoolTransport(httpx.AsyncBaseTransport):
    """An httpx transport over an httpcore pool of our own (its network backend is the
    point; httpx's own transport builds its pool without one). httpcore's errors pass
    through unmapped: :meth:`SafeFetcher._get` turns both kinds into ``FetchFailed``."""

    def __init__(self, pool: httpcore.AsyncConnectionPool) -> None:
        self._pool = pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, AsyncIterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


def _checked_url(url: str) -> httpx.URL:
    """``url`` parsed, if a fetch may go there (its address is checked on connect)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise FetchFailed(f"{_shown(url)} is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        shown = f"{parsed.scheme}://" if parsed.scheme else "a relative URL"
        raise FetchFailed(
            f"{_shown(url)} cannot be fetched: {shown} is not supported, only http:// and "
            "https:// URLs"
        )
    if parsed.userinfo:
        raise FetchFailed(
            f"{_shown(url)} carries a user name or password; credentials in URLs are not supported"
        )
    if not parsed.host:
        raise FetchFailed(f"{_shown(url)} has no host name")
    return parsed


async def _body(response: httpx.Response, max_bytes: int, url: str) -> bytes:
    declared = response.headers.get("Content-Length", "").strip()
    encoded = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoded in ("", "identity") and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(url, max_bytes)
    chunks: list[bytes] = []
    total = 0
    # Decoded bytes are counted as they arrive: Content-Length may be absent, wrong, or
    # the size of a compressed body many times smaller than what it inflates to.
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise _too_large(url, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _content_type(header: str) -> tuple[str, str | None]:
    """(media type without parameters, lower case; the ``charset`` parameter if any)."""
    media_type, _, params = header.partition(";")
    charset: str | None = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return media_type.strip().lower(), charset


def _too_large(url: str, max_bytes: int) -> FetchFailed:
    return FetchFailed(f"{_shown(url)} is larger than the {_megabytes(max_bytes)} MB limit")


def _megabytes(n: int) -> str:
    mb = n / (1024 * 1024)
    return f"{mb:g}" if mb >= 1 else f"{mb:.3g}"


def _shown(url: str) -> str:
    # Signed URLs can be long; the start says which one it was.
    return url if len(url) <= 200 else url[:197] + "..."
