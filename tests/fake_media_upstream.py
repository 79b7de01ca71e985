"""A scripted local fake of the media upstream's queue API, over real HTTP on loopback.

It speaks the protocol :mod:`puras_runner.adapters.media_upstream` talks:

* ``POST /{upstream_model}`` (header ``Authorization: Key <key>``, the inputs as the JSON
  body) -> ``{request_id, status_url, response_url, cancel_url}``, or the scripted
  submit failure (``422 {"detail": [...]}``);
* ``GET /{app}/requests/{id}/status`` -> ``IN_QUEUE`` / ``IN_PROGRESS`` for the scripted
  number of polls, then ``COMPLETED`` (or ``FAILED`` with an ``error``);
* ``GET /{app}/requests/{id}`` -> the scripted result JSON (or a 4xx/5xx with ``detail``);
* ``PUT /{app}/requests/{id}/cancel`` -> records the cancel;
* ``GET /files/{name}`` -> output bytes, without any key (as the upstream's CDN):
  ``out.png``, ``out.mp4``, ``out.wav`` are there from the start; ``add_file`` adds more.

``{app}`` is the model id's first two segments, as the real upstream names it. Each
upstream model has a :class:`Script`; an unscripted model answers the default result of
its kind (from the shipped media routes, else image). Every request is recorded (method,
path, headers, JSON body) so a test can assert the key header and the inputs sent, and
wait for a request instead of sleeping::

    with FakeMediaUpstream.running(key="k") as fake:
        fake.script("fal-ai/veo3", Script(polls=3, result=video_result(fake)))
        fake.script("fal-ai/flux", Script(submit_status=422, submit_detail=[...]))
        ...
        assert fake.submits()[0].headers["authorization"] == "Key k"

Standalone, for a runner in another process: ``python tests/fake_media_upstream.py
--port N [--key K] [--script file.json]`` (the file: ``{upstream_model: {Script
fields}}``, result URLs may say ``{files}`` for the fake's ``/files`` root). A running
fake is also scripted over HTTP: ``POST /_fake/script`` with that same object,
``GET /_fake/requests`` (every request so far), ``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import struct
import sys
import threading
import time
import wave
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "FakeMediaUpstream",
    "Recorded",
    "Script",
    "audio_result",
    "image_result",
    "script_from_json",
    "tiny_mp4",
    "tiny_png",
    "tiny_wav",
    "video_result",
]

Kind = Literal["image", "video", "audio"]

_ROUTES_FILE = (
    Path(__file__).resolve().parents[1] / "services/runner/src/puras_runner/data/media_routes.json"
)


# -- tiny valid output files ---------------------------------------------------------------


def tiny_png() -> bytes:
    """A valid 1x1 RGB PNG."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def tiny_mp4() -> bytes:
    """An MP4-ish file: an ``ftyp`` box and an empty ``mdat`` (what sniffers look at)."""
    brands = b"isom" + struct.pack(">I", 512) + b"isommp42"
    ftyp = struct.pack(">I", 8 + len(brands)) + b"ftyp" + brands
    return ftyp + struct.pack(">I", 8) + b"mdat"


def tiny_wav() -> bytes:
    """A valid WAV: 10 ms of 8 kHz mono silence."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 80)
    return buffer.getvalue()


# -- scripts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """How the fake answers one upstream model."""

    result: dict[str, Any] | None = None
    """The JSON the result URL returns; None: the default result of ``kind``."""
    kind: Kind | None = None
    """For the default result; None: the model's kind in the shipped routes, else image."""
    polls: int = 0
    """Status polls answered ``IN_QUEUE`` / ``IN_PROGRESS`` before ``COMPLETED``."""
    submit_status: int = 200
    """Not 200: the submit fails with this status and ``submit_detail``."""
    submit_detail: Any = None
    failed_error: Any = None
    """Set: the status turns ``FAILED`` with this ``error`` instead of ``COMPLETED``."""
    result_status: int = 200
    """Not 200: the result URL fails with this status and ``result_detail``."""
    result_detail: Any = None
    never_completes: bool = False
    """The status stays ``IN_PROGRESS`` for ever (deadline tests)."""
    status_failures: int = 0
    """The first N status polls answer 503 (retry tests)."""
    status_url: str | None = None
    """Overrides the ``status_url`` the submit returns (a foreign host, say)."""


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: Any
    """The decoded JSON body, None without one."""


@dataclass
class _Request:
    model: str
    script: Script
    polls: int = 0
    cancelled: bool = False


@dataclass
class _File:
    data: bytes
    content_type: str
    content_length: bool = True


def image_result(fake: FakeMediaUpstream, *names: str) -> dict[str, Any]:
    """An image model's result listing ``names`` (default ``out.png``) of the fake."""
    images = [
        {"url": fake.file_url(n), "content_type": "image/png", "width": 1, "height": 1}
        for n in names or ("out.png",)
    ]
    return {
        "images": images,
        "seed": 42,
        "timings": {"inference": 1.25},
        "has_nsfw_concepts": [False] * len(images),
    }


def video_result(fake: FakeMediaUpstream, name: str = "out.mp4") -> dict[str, Any]:
    return {"video": {"url": fake.file_url(name), "content_type": "video/mp4"}, "seed": 7}


def audio_result(fake: FakeMediaUpstream, name: str = "out.wav") -> dict[str, Any]:
    return {"audio_file": {"url": fake.file_url(name)}, "metrics": {"inference_time": 2.5}}


def _default_kinds() -> dict[str, Kind]:
    try:
        table = json.loads(_ROUTES_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {route["upstream_model"]: route["kind"] for route in table.values()}


class FakeMediaUpstream:
    """The fake (see the module doc); thread-safe: it serves from its own threads."""

    def __init__(self, *, key: str | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        """``key``: the ``Authorization: Key`` required (None: any or none)."""
        self.key = key
        self._host = host
        self._port = port
        self._lock = threading.Condition()
        self._scripts: dict[str, Script] = {}
        self._requests: dict[str, _Request] = {}
        self._recorded: list[Recorded] = []
        self._ids = itertools.count(1)
        self._default_kinds = _default_kinds()
        self._files: dict[str, _File] = {
            "out.png": _File(tiny_png(), "image/png"),
            "out.mp4": _File(tiny_mp4(), "video/mp4"),
            "out.wav": _File(tiny_wav(), "audio/wav"),
        }
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake media upstream is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What ``PURAS_MEDIA_UPSTREAM_URL`` takes."""
        return f"http://{self._host}:{self.port}"

    def file_url(self, name: str) -> str:
        return f"{self.base_url}/files/{name}"

    # -- scripting

    def script(self, upstream_model: str, script: Script) -> None:
        with self._lock:
            self._scripts[upstream_model.strip("/")] = script

    def add_file(
        self, name: str, data: bytes, content_type: str, *, content_length: bool = True
    ) -> str:
        """Serve ``data`` at ``/files/{name}``; its URL. ``content_length=False``: the
        body ends when the connection closes (no declared size)."""
        with self._lock:
            self._files[name] = _File(data, content_type, content_length)
        return self.file_url(name)

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._requests.clear()
            self._recorded.clear()

    # -- what was asked

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._recorded)

    def submits(self) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and not r.path.startswith("/_fake")]

    def cancelled(self) -> list[str]:
        """Request ids whose cancel was asked."""
        with self._lock:
            return [rid for rid, req in self._requests.items() if req.cancelled]

    def wait_for(self, predicate: Callable[[list[Recorded]], bool], timeout: float = 10) -> None:
        """Until ``predicate(requests)`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(list(self._recorded)):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"fake media upstream: not seen in {timeout} s")
                self._lock.wait(left)

    # -- lifecycle

    def start(self) -> FakeMediaUpstream:
        self._server = ThreadingHTTPServer((self._host, self._port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-media", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    @classmethod
    @contextlib.contextmanager
    def running(cls, **kwargs: Any) -> Iterator[FakeMediaUpstream]:
        fake = cls(**kwargs).start()
        try:
            yield fake
        finally:
            fake.stop()

    # -- serving

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._serve(self, "GET")

            def do_POST(self) -> None:
                fake._serve(self, "POST")

            def do_PUT(self) -> None:
                fake._serve(self, "PUT")

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def _serve(self, http: BaseHTTPRequestHandler, method: str) -> None:
        length = int(http.headers.get("Content-Length") or 0)
        raw = http.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path = http.path.split("?", 1)[0]
        with self._lock:
            self._recorded.append(
                Recorded(method, http.path, {k.lower(): v for k, v in http.headers.items()}, body)
            )
            self._lock.notify_all()
        if method == "GET" and path.startswith("/files/"):
            self._send_file(http, path.removeprefix("/files/"))
            return
        if path.startswith("/_fake/"):
            self._control(http, method, path, body)
            return
        if self.key is not None and http.headers.get("Authorization") != f"Key {self.key}":
            _send_json(http, 401, {"detail": "Missing or invalid authorization key"})
            return
        parts = path.strip("/").split("/")
        if method == "POST":
            self._submit(http, path.strip("/"), body)
        elif len(parts) >= 4 and parts[2] == "requests":
            rid, rest = parts[3], parts[4:]
            if method == "GET" and rest == ["status"]:
                self._status(http, rid)
            elif method == "GET" and not rest:
                self._result(http, rid)
            elif method == "PUT" and rest == ["cancel"]:
                self._cancel(http, rid)
            else:
                _send_json(http, 405, {"detail": f"{method} {path} is not an endpoint"})
        else:
            _send_json(http, 404, {"detail": f"no endpoint {method} {path}"})

    def _submit(self, http: BaseHTTPRequestHandler, model: str, inputs: Any) -> None:
        with self._lock:
            script = self._scripts.get(model, Script())
        if script.submit_status != 200:
            _send_json(http, script.submit_status, {"detail": script.submit_detail or "failed"})
            return
        if not isinstance(inputs, dict):
            _send_json(http, 422, {"detail": "the body must be a JSON object"})
            return
        with self._lock:
            rid = f"req-{next(self._ids):04d}"
            self._requests[rid] = _Request(model, script)
        app = "/".join(model.split("/")[:2])
        root = f"{self.base_url}/{app}/requests/{rid}"
        _send_json(
            http,
            200,
            {
                "request_id": rid,
                "status_url": script.status_url or f"{root}/status",
                "response_url": root,
                "cancel_url": f"{root}/cancel",
            },
        )

    def _find(self, http: BaseHTTPRequestHandler, rid: str) -> _Request | None:
        request = self._requests.get(rid)
        if request is None:
            _send_json(http, 404, {"detail": f"request {rid} not found"})
        return request

    def _status(self, http: BaseHTTPRequestHandler, rid: str) -> None:
        with self._lock:
            request = self._find(http, rid)
            if request is None:
                return
            request.polls += 1
            polls, script = request.polls, request.script
        if polls <= script.status_failures:
            _send_json(http, 503, {"detail": "upstream busy"})
            return
        pending = polls - script.status_failures
        if script.never_completes or pending <= script.polls:
            state = "IN_QUEUE" if pending <= script.polls // 2 else "IN_PROGRESS"
            _send_json(http, 202, {"status": state, "request_id": rid, "queue_position": 0})
        elif script.failed_error is not None:
            _send_json(http, 200, {"status": "FAILED", "error": script.failed_error})
        else:
            _send_json(http, 200, {"status": "COMPLETED", "request_id": rid})

    def _result(self, http: BaseHTTPRequestHandler, rid: str) -> None:
        with self._lock:
            request = self._find(http, rid)
            if request is None:
                return
            script, model = request.script, request.model
        if script.result_status != 200:
            _send_json(http, script.result_status, {"detail": script.result_detail or "failed"})
            return
        _send_json(http, 200, script.result or self._default_result(model, script))

    def _default_result(self, model: str, script: Script) -> dict[str, Any]:
        kind = script.kind or self._default_kinds.get(model, "image")
        if kind == "video":
            return video_result(self)
        if kind == "audio":
            return audio_result(self)
        return image_result(self)

    def _cancel(self, http: BaseHTTPRequestHandler, rid: str) -> None:
        with self._lock:
            request = self._find(http, rid)
            if request is None:
                return
            request.cancelled = True
            self._lock.notify_all()
        _send_json(http, 202, {"status": "CANCELLATION_REQUESTED"})

    def _send_file(self, http: BaseHTTPRequestHandler, name: str) -> None:
        with self._lock:
            file = self._files.get(name)
        if file is None:
            _send_json(http, 404, {"detail": f"no file {name}"})
            return
        http.send_response(200)
        http.send_header("Content-Type", file.content_type)
        if file.content_length:
            http.send_header("Content-Length", str(len(file.data)))
        http.end_headers()
        # The client may stop reading at its byte cap: that is the point of the test.
        with contextlib.suppress(OSError):
            http.wfile.write(file.data)

    def _control(self, http: BaseHTTPRequestHandler, method: str, path: str, body: Any) -> None:
        if method == "POST" and path == "/_fake/script" and isinstance(body, dict):
            for model, spec in body.items():
                self.script(model, script_from_json(spec, self.base_url))
            _send_json(http, 200, {"scripted": sorted(body)})
        elif method == "GET" and path == "/_fake/requests":
            _send_json(
                http,
                200,
                [
                    {"method": r.method, "path": r.path, "headers": r.headers, "body": r.body}
                    for r in self.requests
                    if not r.path.startswith("/_fake/")
                ],
            )
        elif method == "POST" and path == "/_fake/reset":
            self.reset()
            _send_json(http, 200, {"reset": True})
        else:
            _send_json(http, 404, {"detail": f"no control endpoint {method} {path}"})


def script_from_json(spec: Any, base_url: str) -> Script:
    """A :class:`Script` from its fields as JSON; ``{files}`` in the result's strings
    stands for the fake's ``/files`` root."""
    if not isinstance(spec, dict):
        raise ValueError(f"a script is an object of Script fields, not {spec!r}")
    known = {f.name for f in fields(Script)}
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"unknown script field(s) {sorted(unknown)}; fields: {sorted(known)}")
    script = Script(**spec)
    if script.result is not None:
        text = json.dumps(script.result).replace("{files}", f"{base_url}/files")
        script = replace(script, result=json.loads(text))
    return script


def _send_json(http: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    http.send_response(status)
    http.send_header("Content-Type", "application/json")
    http.send_header("Content-Length", str(len(data)))
    http.end_headers()
    with contextlib.suppress(OSError):
        http.wfile.write(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default=None, help="the Authorization: Key required")
    parser.add_argument("--script", type=Path, help="JSON: {upstream_model: {Script fields}}")
    args = parser.parse_args(argv)
    fake = FakeMediaUpstream(key=args.key, host=args.host, port=args.port).start()
    if args.script is not None:
        for model, spec in json.loads(args.script.read_text(encoding="utf-8")).items():
            fake.script(model, script_from_json(spec, fake.base_url))
    print(fake.base_url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
