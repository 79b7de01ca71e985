"""The job sandbox's only way out: an HTTP proxy in the runner, with the SSRF policy.

A job's network namespace has nothing but loopback. Where the operator allows egress,
each job's process opens a listening socket on ``127.0.0.1:3128`` of its own namespace
before any job code runs and hands it to the runner (:func:`puras_runner.jail.
egress_listener`); the runner accepts the job's connections on it from outside (a
socket stays in the namespace it was made in) and proxies them here. ``HTTP_PROXY`` and
``HTTPS_PROXY`` point there, so pip, uv, requests, httpx, urllib, curl and the SDK use
it without knowing. No process of the job's is in between, and the job cannot take the
listener over: it has no copy.

The proxy speaks ``CONNECT host:port`` (any TCP protocol, TLS included: the job talks to
the real server end to end) and plain ``http://`` requests in absolute form. For each it
resolves the host itself, refuses when any address is not public (loopback, private,
link-local — the cloud metadata address —, multicast, reserved, CGNAT...; the same rules
as the SDK's fetch) unless the operator allows its network, and connects to the address
it checked, never to a fresh resolution. A refusal is a ``403`` whose reason phrase says
why. Who asks is known by the listener it came in on (one per job or build).

Two policies: ``public`` for jobs, and an allowlist of package-index hosts for
``requirements.txt`` builds (:class:`EgressPolicy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from puras._netpolicy import refusal
from puras_common.logging import get_logger

__all__ = ["EgressListener", "EgressPolicy", "EgressProxy", "Refused"]

log = get_logger(__name__)

HEAD_LIMIT: Final = 16 * 1024
HEAD_TIMEOUT_S: Final = 30.0
CONNECT_TIMEOUT_S: Final = 15.0
MAX_CONNECTIONS_PER_JOB: Final = 64
"""Open proxied connections one job may hold at once: the runner's descriptors are
shared by every tenant's jobs, so none may use them up."""

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(Exception):
    """The destination is outside the policy; ``str()`` says why (the 403 reason)."""


@dataclass(frozen=True)
class EgressPolicy:
    """Who may be reached."""

    allow_networks: tuple[IPNetwork, ...] = ()
    """Non-public networks the operator allows anyway (a private index, a mirror)."""
    hosts: frozenset[str] | None = None
    """Only these host names (``None``: any host whose addresses are allowed)."""
    ports: frozenset[int] = field(default_factory=lambda: frozenset({80, 443}))
    """Destination ports; empty: any."""
    check_addresses: bool = True
    """False for a fixed allowlist of operator-chosen hosts (package indexes): those are
    trusted wherever they resolve (a mirror on a private address included)."""
    platform: frozenset[tuple[str, int]] = frozenset()
    """The Puras API (host, port) jobs call for media (``PURAS_RUNNER_API_URL``): always
    reachable, wherever it is (often a private or loopback address), and nothing else
    on that address is."""

    def is_platform(self, host: str, port: int) -> bool:
        return (host.lower().rstrip("."), port) in self.platform

    def check_host(self, host: str, port: int) -> None:
        if self.is_platform(host, port):
            return
        if self.hosts is not None and host.lower().rstrip(".") not in self.hosts:
            raise Refused(
                f"{host} is not an allowed host here (only {', '.join(sorted(self.hosts))})"
            )
        if self.ports and port not in self.ports:
            raise Refused(
                f"port {port} is not allowed (only {', '.join(map(str, sorted(self.ports)))})"
            )

    def check_address(self, host: str, address: str) -> None:
        if not self.check_addresses:
            return
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip in net for net in self.allow_networks):
            return
        label = refusal(ip)
        if label is not None:
            raise Refused(
                f"{host} resolves to {address}, {label} address; only public addresses "
                "may be reached from a job"
            )


class EgressListener:
    """The proxy serving one job's (or one build's) listener; closed when it ends."""

    def __init__(self, proxy: EgressProxy, listener: socket.socket, peer: str) -> None:
        self._proxy = proxy
        self._listener = listener
        self.peer = peer
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._loop = asyncio.get_running_loop()
        listener.setblocking(False)
        self._loop.add_reader(listener.fileno(), self._accept)

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(self._tasks) >= MAX_CONNECTIONS_PER_JOB:
                conn.close()
                log.info(
                    "egress refused",
                    proxy=self._proxy.name,
                    peer=self.peer,
                    reason=f"more than {MAX_CONNECTIONS_PER_JOB} open connections",
                )
                continue
            task = self._loop.create_task(self._serve(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
        except OSError:
            conn.close()
            return
        try:
            await self._proxy.handle(reader, writer, self.peer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def close(self) -> None:
        """Stop accepting, and end the connections still open (the job is over)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._listener.fileno())
        self._listener.close()
        for task in list(self._tasks):
            task.cancel()


class EgressProxy:
    """One egress policy, serving the listeners of the jobs (or builds) that use it."""

    def __init__(self, policy: EgressPolicy, *, name: str) -> None:
        self.policy = policy
        self.name = name

    def serve(self, listener: socket.socket, peer: str) -> EgressListener:
        """Accept and proxy the connections made to ``listener`` (it is ours to close)."""
        return EgressListener(self, listener, peer)

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        if len(head) > HEAD_LIMIT:
            await _answer(writer, 431, "Request Header Fields Too Large")
            return
        request_line, _, rest = head.partition(b"\r\n")
        try:
            method, target, version = request_line.decode("latin-1").split(" ")
        except ValueError:
            await _answer(writer, 400, "Bad Request")
            return
        connect = method.upper() == "CONNECT"
        try:
            host, port, forward = _destination(method, target, version, rest, connect=connect)
            self.policy.check_host(host, port)
            upstream_r, upstream_w, address = await self._open(host, port)
        except Refused as exc:
            log.info("egress refused", proxy=self.name, peer=peer, reason=str(exc))
            await _answer(writer, 403, f"Forbidden: {exc}")
            return
        except (OSError, TimeoutError) as exc:
            await _answer(writer, 502, f"Bad Gateway: cannot connect: {exc}")
            return
        log.debug("egress", proxy=self.name, peer=peer, host=host, address=address)
        try:
            if connect:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                upstream_w.write(forward)
            await asyncio.gather(_pipe(reader, upstream_w), _pipe(upstream_r, writer))
        finally:
            upstream_w.close()

    async def _open(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise Refused(f"cannot resolve {host}: {exc}") from None
        addresses: list[str] = []
        for info in infos:
            address = str(info[4][0])
            if address not in addresses:
                addresses.append(address)
        # Every address, not just the one used: a name with one public and one private
        # address would otherwise reach the private one on a retry.
        if not self.policy.is_platform(host, port):
            for address in addresses:
                self.policy.check_address(host, address)
        last: Exception | None = None
        for address in addresses:
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection(address, port), CONNECT_TIMEOUT_S
                )
                return r, w, address
            except (OSError, TimeoutError) as exc:
                last = exc
        raise OSError(f"{host}:{port}: {last}")


def _destination(
    method: str, target: str, version: str, rest: bytes, *, connect: bool
) -> tuple[str, int, bytes]:
    """(host, port, the bytes to send upstream first) of a request head."""
    if connect:
        host, sep, port_text = target.rpartition(":")
        if not sep or not port_text.isdigit():
            raise Refused(f"CONNECT needs host:port, got {target!r}")
        return host.strip("[]"), int(port_text), b""
    parts = urlsplit(target)
    if parts.scheme != "http" or not parts.hostname:
        raise Refused("only http:// URLs in absolute form (or CONNECT for https) are proxied")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    head = f"{method} {path} {version}\r\n".encode("latin-1") + rest
    return parts.hostname, parts.port or 80, head


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    # One line: a reason phrase carries no CR/LF, and stays readable in client errors.
    reason = reason.replace("\r", " ").replace("\n", " ")[:400]
    body = (reason + "\n").encode("utf-8", "replace")
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("utf-8", "replace")
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


def index_hosts(urls: list[str]) -> frozenset[str]:
    """The hosts a build may reach for these index URLs (PyPI: its file host too)."""
    hosts: set[str] = set()
    for url in urls:
        host = (urlsplit(url).hostname or "").lower()
        if host:
            hosts.add(host)
        if host == "pypi.org":
            hosts.add("files.pythonhosted.org")
    return frozenset(hosts)


def index_ports(urls: list[str]) -> frozenset[int]:
    """The ports of these index URLs."""
    ports = set()
    for url in urls:
        parts = urlsplit(url)
        ports.add(parts.port or (443 if parts.scheme == "https" else 80))
    return frozenset(ports)
