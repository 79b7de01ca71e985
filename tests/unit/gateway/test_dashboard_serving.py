"""The dashboard's files as the gateway serves them: the page at ``/``, its modules under
``/ui/`` with a JavaScript type (module scripts refuse anything else) and the strict
headers on each, nothing outside the static folder, and no API route shadowed."""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from gateway_fakes import client_for

from puras_gateway.dashboard import DASHBOARD_HEADERS, mount_dashboard
from puras_gateway.dashboard.serve import STATIC_DIR
from puras_gateway.settings import GatewaySettings


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    mount_dashboard(app)
    return TestClient(app)


def _has_dashboard_headers(r: Any) -> None:
    # (TestClient's response class is not httpx's own in every Starlette release.)
    for name, value in DASHBOARD_HEADERS.items():
        assert r.headers.get(name) == value, name


def test_the_index_is_the_page_with_the_headers(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.content == (STATIC_DIR / "index.html").read_bytes()
    _has_dashboard_headers(r)


def test_head_of_the_index_has_the_headers_and_no_body(client: TestClient) -> None:
    r = client.head("/")
    assert r.status_code == 200
    assert r.content == b""
    assert int(r.headers["content-length"]) == (STATIC_DIR / "index.html").stat().st_size
    _has_dashboard_headers(r)


@pytest.mark.parametrize("path", ["app.js", "lib/api.js", "vendor/preact.mjs", "vendor/htm.mjs"])
def test_modules_are_javascript(client: TestClient, path: str) -> None:
    r = client.get(f"/ui/{path}")
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0] == "text/javascript"
    assert r.content == (STATIC_DIR / path).read_bytes()
    _has_dashboard_headers(r)


def test_a_module_is_javascript_whatever_the_host_type_table_says(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A host whose table maps .js to text/plain (seen with Windows registries).
    import mimetypes

    import starlette.responses

    real = mimetypes.guess_type

    def wrong(url: Any, strict: bool = True) -> tuple[str | None, str | None]:
        if str(url).endswith((".js", ".mjs")):
            return "text/plain", None
        return real(url, strict)

    monkeypatch.setattr(starlette.responses, "guess_type", wrong)
    assert client.get("/ui/app.css").headers["content-type"].startswith("text/css")
    for path in ("/ui/app.js", "/ui/vendor/preact.mjs"):
        assert client.get(path).headers["content-type"].split(";")[0] == "text/javascript"


def test_styles_and_icon_have_their_types(client: TestClient) -> None:
    css = client.get("/ui/app.css")
    assert css.headers["content-type"].startswith("text/css")
    _has_dashboard_headers(css)
    assert client.get("/ui/favicon.svg").headers["content-type"].startswith("image/svg+xml")


def test_an_unchanged_file_revalidates_to_304_with_the_headers(client: TestClient) -> None:
    first = client.get("/ui/app.js")
    again = client.get("/ui/app.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["Content-Security-Policy"] == DASHBOARD_HEADERS["Content-Security-Policy"]


@pytest.mark.parametrize(
    "path",
    [
        "/ui/missing.js",
        "/ui/",
        "/ui/lib",
        "/ui/%2e%2e/serve.py",
        "/ui/%2E%2E/__init__.py",
        "/ui/..%2fserve.py",
        "/ui/lib/%2e%2e/%2e%2e/serve.py",
        "/ui/%2e%2e/%2e%2e/%2e%2e/pyproject.toml",
    ],
)
def test_nothing_outside_the_static_folder_is_served(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert b"STATIC_DIR" not in r.content
    assert b"import" not in r.content


async def _raw_get(app: FastAPI, raw_path: str) -> tuple[int, bytes]:
    """A request whose path reaches the app exactly as written: HTTP clients collapse
    ``..`` segments before sending, a hostile one does not."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"gw")],
        "client": ("127.0.0.1", 1),
        "server": ("gw", 80),
    }
    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


@pytest.mark.parametrize(
    "raw", ["/ui/../serve.py", "/ui/../../dashboard/serve.py", "/ui/./../__init__.py"]
)
async def test_dot_dot_segments_sent_raw_are_refused(raw: str) -> None:
    app = FastAPI()
    mount_dashboard(app)
    status, body = await _raw_get(app, raw)
    assert status == 404
    assert b"mount_dashboard" not in body


async def test_the_dashboard_shadows_no_api_route() -> None:
    async for c in client_for(GatewaySettings(env="dev")):
        health = await c.get("/healthz")
        assert health.status_code == 200
        assert health.headers["content-type"].startswith("application/json")
        pricing = await c.get("/v1/pricing")
        assert pricing.status_code == 200
        assert pricing.headers["content-type"].startswith("application/json")
        missing = await c.get("/v1/no-such-thing")
        assert missing.status_code == 404
        assert not missing.headers["content-type"].startswith("text/html")
        assert "Content-Security-Policy" not in pricing.headers
        # ...and in the whole app the dashboard is still there.
        page = await c.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        module = await c.get("/ui/app.js")
        assert module.headers["content-type"].split(";")[0] == "text/javascript"


def test_every_file_the_page_names_is_there(client: TestClient) -> None:
    index = (STATIC_DIR / "index.html").read_text()
    named = re.findall(r'(?:href|src)="(/ui/[^"]+)"', index)
    assert "/ui/app.js" in named
    for path in named:
        assert client.get(path).status_code == 200, path
