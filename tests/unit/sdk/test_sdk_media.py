"""``media.run`` (S2) against a loopback HTTP server standing in for the gateway, and a
loopback forward proxy standing in for the runner's egress proxy."""

from __future__ import annotations

import http.client
import json
import pickle
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

import puras
from puras import PurasError, media

ANSWER: dict[str, Any] = {
    "model": "openai/gpt-image-2",
    "kind": "image",
    "drive_path": "media/12b5e4d5.png",
    "output_url": "https://drive.example/signed/12b5e4d5.png",
    "request_id": "req-1",
    "billed_micros": 48000,
    "billed_usd": 0.048,
    "meta": {"metrics": {"inference_time": 1.5}},
}
TOKEN = "job-token-0123456789"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: bytes = json.dumps(ANSWER).encode()
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    hold: bool = False
    """Answer only once the test is over (the client's timeout must end the call)."""
    drop: bool = False
    """Close the connection without answering, after reading the request."""


class Gateway(ThreadingHTTPServer):
    """Records every request; answers with ``answer``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _GatewayHandler)
        self.seen: list[Request] = []
        self.answer = Answer()
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _GatewayHandler(BaseHTTPRequestHandler):
    server: Gateway

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.seen.append(
            Request(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length),
            )
        )
        answer = self.server.answer
        if answer.hold:
            self.server.release.wait(30)
        if answer.drop:
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    do_GET = do_POST = _record

    def log_message(self, format: str, *args: object) -> None:
        pass


class ForwardProxy(ThreadingHTTPServer):
    """A minimal forward proxy: records each request line; relays absolute-form http
    requests to their origin and refuses CONNECT (403)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.lines: list[str] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: ForwardProxy

    def do_CONNECT(self) -> None:
        self.server.lines.append(self.requestline)
        self.send_response(403, "refused by the test proxy")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.server.lines.append(self.requestline)
        target = urlsplit(self.path)
        if not target.hostname or target.port is None:
            self.send_error(400, "not an absolute-form request")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            upstream.request("POST", target.path or "/", body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
        finally:
            upstream.close()
        self.send_response(reply.status, reply.reason)
        self.send_header("Content-Type", reply.getheader("Content-Type") or "")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serving(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    return thread


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    srv = Gateway()
    thread = _serving(srv)
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    srv = ForwardProxy()
    thread = _serving(srv)
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join()


@pytest.fixture
def job_env(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """A job's environment as the runner sets it, outside the sandbox (no proxy)."""
    monkeypatch.setenv(media.API_URL_ENV, gateway.url)
    monkeypatch.setenv(media.JOB_TOKEN_ENV, TOKEN)
    for name in (media.EGRESS_PROXY_ENV, "HTTP_PROXY", "HTTPS_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return gateway


# -- the call ------------------------------------------------------------------------------


def test_media_is_part_of_the_sdk() -> None:
    assert puras.media is media
    assert callable(media.run)
    assert "media" in puras.__all__


def test_the_request_carries_the_body_and_the_job_token(job_env: Gateway) -> None:
    got = media.run(
        "openai/gpt-image-2",
        {"prompt": "a red bicycle", "size": "512x512"},
        output_path="renders/./bike.png",
        output_url_path="outputs[0].asset.url",
        kind="image",
        size="1024x1024",
        quality="high",
    )
    assert got == ANSWER
    [seen] = job_env.seen
    assert (seen.method, seen.path) == ("POST", "/v1/media/generate")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {
        "model": "openai/gpt-image-2",
        # kwargs are merged into inputs, and win
        "inputs": {"prompt": "a red bicycle", "size": "1024x1024", "quality": "high"},
        "kind": "image",
        # canonical, by the drive's own normalizer
        "output_path": "renders/bike.png",
        "output_url_path": "outputs[0].asset.url",
    }


def test_defaults(job_env: Gateway) -> None:
    media.run("kuaishou/kling-v3-t2v", prompt="rainy alley", duration=5)
    assert job_env.seen[0].json() == {
        "model": "kuaishou/kling-v3-t2v",
        "inputs": {"prompt": "rainy alley", "duration": 5},
        "kind": "auto",
        "output_path": None,
        "output_url_path": None,
    }


def test_inputs_are_not_changed_by_the_merge(job_env: Gateway) -> None:
    inputs = {"prompt": "x"}
    media.run("m/x", inputs, prompt="y")
    assert inputs == {"prompt": "x"}
    assert job_env.seen[0].json()["inputs"] == {"prompt": "y"}


def test_the_api_url_may_have_a_path_and_a_trailing_slash(
    job_env: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(media.API_URL_ENV, job_env.url + "/puras/")
    media.run("m/x")
    assert job_env.seen[0].path == "/puras/v1/media/generate"


# -- refused before any call ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["picture", "IMAGE", "", None, 3])
def test_an_unknown_kind_is_refused_before_any_call(job_env: Gateway, kind: Any) -> None:
    with pytest.raises(PurasError, match="kind must be one of image, video, audio, auto"):
        media.run("m/x", {"prompt": "p"}, kind=kind)
    assert job_env.seen == []


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (lambda: media.run(""), "needs a model slug"),
        (lambda: media.run(None), "needs a model slug"),  # type: ignore[arg-type]
        (lambda: media.run("m/x", ["prompt"]), "inputs must be a dict"),  # type: ignore[arg-type]
        (lambda: media.run("m/x", image=b"\x89PNG"), "inputs must be JSON values"),
        (lambda: media.run("m/x", strength=float("nan")), "inputs must be JSON values"),
        (lambda: media.run("m/x", output_path="../x.png"), "output_path: .*'..' segment"),
        (lambda: media.run("m/x", output_path="/etc/x.png"), "output_path: .*starts with /"),
        (lambda: media.run("m/x", output_path="renders/"), "output_path: .*names a folder"),
        (lambda: media.run("m/x", output_path=3), "output_path must be a drive path"),  # type: ignore[arg-type]
        (lambda: media.run("m/x", output_url_path=""), "output_url_path must be"),
    ],
)
def test_bad_arguments_are_refused_before_any_call(job_env: Gateway, call: Any, says: str) -> None:
    with pytest.raises(PurasError, match=says):
        call()
    assert job_env.seen == []


@pytest.mark.parametrize("missing", [media.API_URL_ENV, media.JOB_TOKEN_ENV])
def test_outside_a_job_the_error_says_how_to_try_it(
    job_env: Gateway, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.delenv(missing)
    with pytest.raises(PurasError) as caught:
        media.run("m/x", prompt="p")
    message = str(caught.value)
    assert "works inside a Puras job" in message
    assert f"{missing} is not set" in message
    assert "To try it outside a job, set PURAS_API_URL" in message
    assert job_env.seen == []


def test_the_api_url_must_be_http(job_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(media.API_URL_ENV, "file:///etc/passwd")
    with pytest.raises(PurasError, match="not an http:// or https:// URL"):
        media.run("m/x")


# -- answers -------------------------------------------------------------------------------


def test_an_api_error_keeps_its_message_status_and_code(job_env: Gateway) -> None:
    job_env.answer = Answer(
        400,
        json.dumps(
            {"error": {"code": "unknown_model", "message": "unknown model slug 'no/such'"}}
        ).encode(),
    )
    with pytest.raises(PurasError) as caught:
        media.run("no/such", prompt="p")
    assert str(caught.value) == "media.run('no/such') failed: unknown model slug 'no/such'"
    assert (caught.value.status, caught.value.code) == (400, "unknown_model")
    # The status survives the trip a job's exception makes between processes.
    again = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert (str(again), again.status, again.code) == (str(caught.value), 400, "unknown_model")


@pytest.mark.parametrize(
    ("status", "body", "says"),
    [
        (402, b'{"detail": "the project has no credit left"}', "the project has no credit left"),
        (422, b'{"detail": [{"loc": ["body", "model"]}]}', 'HTTP 422: [{"loc"'),
        (502, b"<html>Bad Gateway</html>", "HTTP 502 Bad Gateway: <html>Bad Gateway</html>"),
        (500, b"", "HTTP 500 Internal Server Error"),
    ],
)
def test_other_error_bodies(job_env: Gateway, status: int, body: bytes, says: str) -> None:
    job_env.answer = Answer(status, body)
    with pytest.raises(PurasError, match="failed: ") as caught:
        media.run("m/x")
    assert says in str(caught.value)
    assert caught.value.status == status
    assert caught.value.code is None


def test_a_failed_call_is_not_retried(job_env: Gateway) -> None:
    job_env.answer = Answer(503, b'{"error": {"code": "upstream", "message": "model down"}}')
    with pytest.raises(PurasError, match="model down"):
        media.run("m/x")
    assert len(job_env.seen) == 1  # a retry could bill twice


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (json.dumps({k: v for k, v in ANSWER.items() if k != "drive_path"}), "lacks drive_path"),
        ("[1, 2]", "did not answer with a JSON object"),
        ("not json", "did not answer with a JSON object"),
    ],
)
def test_an_answer_without_the_result_keys_is_an_error(
    job_env: Gateway, body: str, says: str
) -> None:
    job_env.answer = Answer(200, body.encode())
    with pytest.raises(PurasError, match=says):
        media.run("m/x")


def test_a_redirect_is_not_followed(job_env: Gateway) -> None:
    elsewhere = Gateway()
    thread = _serving(elsewhere)
    try:
        job_env.answer = Answer(307, b"", {"Location": elsewhere.url + "/steal"})
        with pytest.raises(PurasError, match="HTTP 307") as caught:
            media.run("m/x")
        assert caught.value.status == 307
        assert elsewhere.seen == []  # the job's token went nowhere else
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()
        thread.join()


def test_an_unreachable_api(job_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    # A port just closed: nothing listens there.
    closed = Gateway()
    url = closed.url
    closed.server_close()
    monkeypatch.setenv(media.API_URL_ENV, url)
    with pytest.raises(PurasError, match="cannot reach the Puras API at"):
        media.run("m/x")


def test_a_lost_answer_says_the_call_may_have_been_billed(job_env: Gateway) -> None:
    job_env.answer = Answer(drop=True)
    with pytest.raises(PurasError, match="broke before its answer") as caught:
        media.run("m/x")
    assert "may still have run and been billed" in str(caught.value)
    assert len(job_env.seen) == 1


def test_a_silent_api_times_out(job_env: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    assert media.TIMEOUT_SECONDS == 15 * 60  # video models are slow
    monkeypatch.setattr(media, "TIMEOUT_SECONDS", 0.3)
    job_env.answer = Answer(hold=True)
    with pytest.raises(PurasError, match=r"no answer within 0\.3 s"):
        media.run("m/x")
    assert len(job_env.seen) == 1


# -- the egress proxy ----------------------------------------------------------------------


def test_inside_the_sandbox_the_call_goes_through_the_egress_proxy(
    job_env: Gateway, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the sandbox sets it: NO_PROXY lists the loopback the API URL names.
    monkeypatch.setenv(media.EGRESS_PROXY_ENV, proxy.address)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,::1")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1,::1")
    assert media.run("m/x", prompt="p") == ANSWER
    assert proxy.lines == [f"POST {job_env.url}/v1/media/generate HTTP/1.1"]
    [seen] = job_env.seen
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.json()["inputs"] == {"prompt": "p"}


def test_an_https_api_is_reached_through_a_tunnel_of_the_proxy(
    job_env: Gateway, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(media.API_URL_ENV, "https://api.puras.test:8443")
    monkeypatch.setenv(media.EGRESS_PROXY_ENV, proxy.address)
    with pytest.raises(PurasError, match="cannot reach the Puras API"):
        media.run("m/x")
    [line] = proxy.lines
    assert line.startswith("CONNECT api.puras.test:8443 HTTP/")


def test_without_the_egress_proxy_the_call_is_direct(
    job_env: Gateway, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A proxy of the machine's environment is not the sandbox's: it is not used.
    monkeypatch.setenv("HTTP_PROXY", f"http://{proxy.address}")
    monkeypatch.setenv("http_proxy", f"http://{proxy.address}")
    assert media.run("m/x") == ANSWER
    assert proxy.lines == []
    assert len(job_env.seen) == 1
