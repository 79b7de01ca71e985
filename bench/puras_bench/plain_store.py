"""A plain HTTP file server: the floor the drive's HTTP path is compared with.

``PUT /<name>`` writes the request body to ``<root>/<name>`` the way the drive's
filesystem backend stores an upload (1 MiB writes to a staging file, fsync, rename into
place); ``GET /<name>`` streams the file back in 1 MiB reads. Python's standard library,
one process, a thread per connection, no auth, no parsing beyond the request line: what
any HTTP layer in front of a disk costs at least.

Run as a script (``python plain_store.py --root DIR --port N``), in its own process, so
it shares no interpreter lock with the client that measures it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final

CHUNK: Final = 1024 * 1024
NAME: Final = re.compile(r"^/([A-Za-z0-9._-]{1,100})$")


def make_handler(root: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _target(self) -> Path | None:
            m = NAME.match(self.path)
            if m is None or m.group(1).startswith("."):
                self._answer(400, {"error": "name the file as /<name> ([A-Za-z0-9._-])"})
                return None
            return root / m.group(1)

        def _answer(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_PUT(self) -> None:
            target = self._target()
            if target is None:
                return
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                self._answer(411, {"error": "send a Content-Length"})
                return
            left = int(length)
            staging = root / f".staging-{target.name}-{os.getpid()}-{id(self)}"
            with staging.open("wb") as out:
                while left:
                    chunk = self.rfile.read(min(CHUNK, left))
                    if not chunk:
                        break
                    out.write(chunk)
                    left -= len(chunk)
                out.flush()
                os.fsync(out.fileno())
            if left:
                staging.unlink()
                self.close_connection = True
                return
            staging.replace(target)
            self._answer(201, {"bytes": int(length)})

        def do_GET(self) -> None:
            target = self._target()
            if target is None:
                return
            try:
                f = target.open("rb")
            except FileNotFoundError:
                self._answer(404, {"error": "no such file"})
                return
            with f:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(os.fstat(f.fileno()).st_size))
                self.end_headers()
                while chunk := f.read(CHUNK):
                    self.wfile.write(chunk)

        def log_message(self, format: str, *args: object) -> None:
            return  # one line per request would be the bulk of its work on small files

    return Handler


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", type=Path, required=True)
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args(argv)
    a.root.mkdir(parents=True, exist_ok=True)
    server = ThreadingHTTPServer(("127.0.0.1", a.port), make_handler(a.root))
    server.daemon_threads = True
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
