"""A real HTTP server on a loopback address, in a thread, for tests of outbound fetches.

Routes are ``path -> handler(request) -> Reply``; every request is recorded (path and
headers) so a test can say the server was, or was never, reached.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["LoopbackServer", "Reply", "Seen", "serve"]


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_length: bool = True
    """False: no ``Content-Length`` (the body ends when the connection closes)."""
    hold: bool = False
    """Stall after sending the headers, until the server is shut down."""


Route = Callable[[Seen], Reply]


@dataclass
class LoopbackServer:
    host: str
    port: int
    seen: list[Seen]
    release: threading.Event
    """Set at teardown: every held reply goes on."""

    tls: bool = False

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"


@contextmanager
def serve(
    routes: dict[str, Route], host: str = "127.0.0.1", *, tls: ssl.SSLContext | None = None
) -> Iterator[LoopbackServer]:
    """Serve ``routes`` on ``host`` (a free port); over TLS with ``tls``, a server context."""
    seen: list[Seen] = []
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            request = Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
            seen.append(request)
            route = routes.get(self.path.split("?", 1)[0])
            reply = route(request) if route else Reply(404, b"not found")
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.content_length:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if reply.hold:
                self.wfile.flush()
                release.wait(30)
            # The client may have given up first (a cap, a deadline): that is the point.
            with contextlib.suppress(OSError):
                self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield LoopbackServer(host, server.server_address[1], seen, release, tls is not None)
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
