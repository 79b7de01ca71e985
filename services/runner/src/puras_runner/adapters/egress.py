"""The job sandbox's only way out: an HTTP proxy on a Unix socket, with the SSRF policy.

A job's network namespace has nothing but loopback. Where the operator allows egress,
each job's process runs a forwarder on ``127.0.0.1:3128`` inside its namespace (see
:func:`puras_runner.jail.start_forwarder`) that hands every connection to this proxy
over a Unix socket bound into the jail; ``HTTP_PROXY``/``HTTPS_PROXY`` point there, so
pip, requests, httpx, urllib, curl and the SDK use it without knowing.

The proxy speaks ``CONNECT host:port`` (any TCP protocol, TLS included: the job talks to
the real server end to end) and plain ``http://`` requests in absolute form. For each it
resolves the host itself, refuses when any address is not public (loopback, private,
link-local — the cloud metadata address —, multicast, reserved, CGNAT...; the same rules
as the SDK's fetch) unless the operator allows its network, and connects to the address
it checked, never to a fresh resolution. A refusal is a ``403`` whose reason phrase says
why. Who asks is known from the socket's peer credentials (the project's uid).

Two policies: ``public`` for jobs, and an allowlist of package-index hosts for
``requirements.txt`` builds (:class:`EgressPolicy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from puras._netpolicy import refusal
from puras_common.logging import get_logger

__all__ = ["EgressPolicy", "EgressProxy", "Refused"]

log = get_logger(__name__)

HEAD_LIMIT: Final = 16 * 1024
HEAD_TIMEOUT_S: Final = 30.0
CONNECT_TIMEOUT_S: Final = 15.0
_UCRED: Final = struct.Struct("iII")

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

    def check_host(self, host: str, port: int) -> None:
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


Resolver = Callable[[str, int], "asyncio.Future[list[str]] | object"]


class EgressProxy:
    """One listening Unix socket with one policy."""

    def __init__(
        self,
        path: Path,
        policy: EgressPolicy,
        *,
        name: str,
        who: Callable[[int], str] | None = None,
    ) -> None:
        self.path = path
        self.policy = policy
        self.name = name
        self._who = who or (lambda uid: f"uid {uid}")
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o755)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        # Every project's uid connects; what it may reach is the policy's to say.
        os.chmod(self.path, 0o666)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _peer(self, writer: asyncio.StreamWriter) -> str:
        sock = writer.get_extra_info("socket")
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
            return self._who(_UCRED.unpack(raw)[1])
        except (OSError, AttributeError):
            return "unknown"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
            log.info("egress refused", proxy=self.name, peer=self._peer(writer), reason=str(exc))
            await _answer(writer, 403, f"Forbidden: {exc}")
            return
        except (OSError, TimeoutError) as exc:
            await _answer(writer, 502, f"Bad Gateway: cannot connect: {exc}")
            return
        log.debug("egress", proxy=self.name, peer=self._peer(writer), host=host, address=address)
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
