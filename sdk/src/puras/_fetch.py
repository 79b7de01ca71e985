"""Downloading a URL input without letting it reach inside the operator's network.

Every hop of a fetch (the URL and each redirect) is checked the same way: http or https
only, the host resolved once, and every address it resolves to must be public; the
connection then goes to the address that was checked (never to a fresh resolution, which
a rebinding DNS server could point elsewhere) while the request still carries the URL's
own host name (Host header, TLS SNI and certificate check). Private, loopback,
link-local, multicast, reserved and unspecified addresses are refused unless their
network is in ``PURAS_ALLOW_PRIVATE_URLS``, a comma-separated list of networks
(``10.0.0.0/8,fd00::/8``). The runner sets it in every job's environment from its
operator's ``egress_allow_networks``, the setting its egress proxy applies too; ``1``
allows every address, for skill code run outside a runner.

Inside the job sandbox there is no network but the runner's egress proxy (its address in
``PURAS_EGRESS_PROXY``): the fetch then goes through it (a CONNECT tunnel for https, the
absolute URL for http) and the proxy applies the same rules, after its own resolution.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import socket
import ssl
import time
from typing import BinaryIO, NamedTuple
from urllib.parse import quote, urljoin, urlsplit

from puras._errors import PurasError
from puras._netpolicy import refusal

__all__ = [
    "ALLOW_PRIVATE_ENV",
    "EGRESS_PROXY_ENV",
    "MAX_DOWNLOAD_BYTES",
    "MAX_REDIRECTS",
    "TIMEOUT_SECONDS",
    "fetch",
]

MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
"""Largest body a URL input may have (50 MB); larger downloads stop and fail."""
TIMEOUT_SECONDS = 60.0
"""Wall-clock limit of one fetch, redirects included."""
MAX_REDIRECTS = 5
"""Redirects followed before a fetch fails."""
ALLOW_PRIVATE_ENV = "PURAS_ALLOW_PRIVATE_URLS"
"""Non-public networks a fetch may reach, set by the runner (see the module docs)."""
EGRESS_PROXY_ENV = "PURAS_EGRESS_PROXY"
"""``host:port`` of the sandbox's egress proxy, set by the runner in a job's env."""

_CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
_USER_AGENT = "puras-sdk/0.1"
# Everything a URL path or query may already contain, so quoting only touches what
# http.client would refuse (spaces, non-ASCII); %XX escapes are left as they are.
_URL_SAFE = "/%:@!$&'()*+,;=-._~?"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class _Target(NamedTuple):
    scheme: str
    host: str
    """The host name as sent (IDNA-encoded), without brackets."""
    port: int
    request_path: str


def fetch(url: str, sink: BinaryIO) -> None:
    """Downloads ``url`` into ``sink`` under the SSRF rules, the size cap and the timeout.

    Raises :class:`PurasError` naming the URL and the reason on any refusal or failure;
    ``sink`` may then hold a partial body.
    """
    deadline = time.monotonic() + TIMEOUT_SECONDS
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        target = _target(current)
        proxy = os.environ.get(EGRESS_PROXY_ENV, "").strip()
        if proxy:
            conn, path = _via_proxy(proxy, target, deadline, current)
        else:
            addresses = _checked_addresses(target, current)
            conn, path = _connect(target, addresses, deadline, current), target.request_path
        try:
            _set_timeout(conn, deadline, current)
            conn.request(
                "GET",
                path,
                headers={
                    "User-Agent": _USER_AGENT,
                    "Accept": "*/*",
                    # No compression: the size cap counts the bytes that land on disk.
                    "Accept-Encoding": "identity",
                },
            )
            response = conn.getresponse()
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise PurasError(
                        f"{_shown(current)} answered HTTP {response.status} without a Location"
                    )
                current = urljoin(current, location.strip())
                continue
            if not 200 <= response.status < 300:
                raise PurasError(
                    f"downloading {_shown(current)} failed: HTTP {response.status} "
                    f"{response.reason}"
                )
            _copy(conn, response, sink, deadline, current)
            return
        except TimeoutError:  # socket.timeout is this very class since Python 3.10
            raise _timed_out(url) from None
        except (OSError, http.client.HTTPException) as exc:
            raise PurasError(f"downloading {_shown(current)} failed: {exc}") from None
        finally:
            conn.close()
    raise PurasError(f"{_shown(url)} redirected more than {MAX_REDIRECTS} times")


def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise PurasError(f"{_shown(url)} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise PurasError(
            f"{_shown(url)} cannot be fetched: only http:// and https:// URLs are allowed"
        )
    if not parts.hostname:
        raise PurasError(f"{_shown(url)} has no host name")
    if parts.username is not None or parts.password is not None:
        raise PurasError(
            f"{_shown(url)} carries a user name or password; credentials in URLs are not "
            "supported (use a signed URL instead)"
        )
    try:
        host = parts.hostname.encode("idna").decode("ascii")
    except UnicodeError:
        raise PurasError(f"{_shown(url)} has an invalid host name") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default_port = 443 if scheme == "https" else 80
    return _Target(scheme, host, port or default_port, quote(path, safe=_URL_SAFE))


def _allowed() -> tuple[bool, list[IPNetwork]]:
    """(every address allowed, extra allowed networks), from the job's environment."""
    raw = os.environ.get(ALLOW_PRIVATE_ENV, "").strip()
    if raw.lower() in ("", "0", "false", "no"):
        return False, []
    if raw.lower() in ("1", "true", "yes"):
        return True, []
    networks: list[IPNetwork] = []
    for part in raw.split(","):
        try:
            networks.append(ipaddress.ip_network(part.strip(), strict=False))
        except ValueError:
            raise PurasError(
                f"{ALLOW_PRIVATE_ENV}={raw!r} is not valid: it is 1 (allow every address) "
                "or networks such as 10.0.0.0/8,fd00::/8"
            ) from None
    return False, networks


def _checked_addresses(target: _Target, url: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as exc:
        raise PurasError(f"cannot resolve the host of {_shown(url)}: {exc}") from None
    addresses: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in addresses:
            addresses.append(address)
    allow_all, networks = _allowed()
    if allow_all:
        return addresses
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip in network for network in networks):
            continue
        label = refusal(ip)
        if label is not None:
            # All addresses, not just the first: a name resolving to one public and one
            # private address would otherwise reach the private one on a retry.
            raise PurasError(
                f"refusing to fetch {_shown(url)}: {target.host} resolves to {address}, "
                f"{label} address; only public addresses may be fetched (the runner's "
                "operator can allow a network with PURAS_RUNNER_EGRESS_ALLOW_NETWORKS)"
            )
    return addresses


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to a fixed, already checked address; Host stays the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a fixed, already checked address; SNI and certificate check use the host."""

    def __init__(
        self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(sock, server_hostname=self.host)


def _via_proxy(
    proxy: str, target: _Target, deadline: float, url: str
) -> tuple[http.client.HTTPConnection, str]:
    """A connection through the egress proxy, and the request target to send on it."""
    host, _, port_text = proxy.rpartition(":")
    remaining = max(0.1, deadline - time.monotonic())
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(
            host, int(port_text), timeout=remaining, context=ssl.create_default_context()
        )
        conn.set_tunnel(target.host, target.port)
        path = target.request_path
    else:
        conn = http.client.HTTPConnection(host, int(port_text), timeout=remaining)
        bracketed = f"[{target.host}]" if ":" in target.host else target.host
        path = f"http://{bracketed}:{target.port}{target.request_path}"
    try:
        conn.connect()
    except OSError as exc:
        conn.close()
        # The proxy's refusal (an address outside the rules) is its reason phrase.
        raise PurasError(f"refusing to fetch {_shown(url)}: {exc}") from None
    return conn, path


def _connect(
    target: _Target, addresses: list[str], deadline: float, url: str
) -> http.client.HTTPConnection:
    last: BaseException | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _timed_out(url)
        conn: http.client.HTTPConnection
        if target.scheme == "https":
            context = ssl.create_default_context()
            conn = _PinnedHTTPSConnection(target.host, target.port, address, remaining, context)
        else:
            conn = _PinnedHTTPConnection(target.host, target.port, address, remaining)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            last = exc
            continue
        return conn
    raise PurasError(f"cannot connect to {target.host} for {_shown(url)}: {last}")


def _copy(
    conn: http.client.HTTPConnection,
    response: http.client.HTTPResponse,
    sink: BinaryIO,
    deadline: float,
    url: str,
) -> None:
    declared = response.getheader("Content-Length")
    if declared and declared.strip().isdigit() and int(declared) > MAX_DOWNLOAD_BYTES:
        raise _too_large(url)
    total = 0
    while True:
        _set_timeout(conn, deadline, url)
        chunk = response.read(_CHUNK)
        if not chunk:
            return
        total += len(chunk)
        # Counted as it streams: Content-Length may be absent or wrong.
        if total > MAX_DOWNLOAD_BYTES:
            raise _too_large(url)
        sink.write(chunk)


def _set_timeout(conn: http.client.HTTPConnection, deadline: float, url: str) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timed_out(url)
    if conn.sock is not None:
        conn.sock.settimeout(remaining)


def _too_large(url: str) -> PurasError:
    limit_mb = MAX_DOWNLOAD_BYTES / (1024 * 1024)
    return PurasError(
        f"{_shown(url)} is larger than the {limit_mb:g} MB download limit; upload it to the "
        "drive and pass its drive_path instead"
    )


def _timed_out(url: str) -> PurasError:
    return PurasError(f"downloading {_shown(url)} took longer than {TIMEOUT_SECONDS:g} s")


def _shown(url: str) -> str:
    # Signed URLs can be long; the start says which file it was.
    return url if len(url) <= 200 else url[:197] + "..."
