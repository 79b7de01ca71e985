"""The skill SDK: file inputs in every shape (S1), secrets (S3), its public surface."""

from __future__ import annotations

import ast
import base64
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import puras
from puras import PurasError, _fetch, load_bytes, load_path, secret

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
SDK_SRC = Path(puras.__file__).parent


# -- a local HTTP server ---------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str | None]] = []
        self.routes: dict[str, Callable[[_Handler], None]] = {}
        self.release = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.seen.append((self.path, self.headers.get("Host")))
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        route(self)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean

    def body(self, data: bytes, *, length: bool = True, content_type: str = "image/png") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if length:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def slow(self) -> None:
        # Answers only once the test is over: the client's deadline must end it first.
        self.server.release.wait(10)
        self.body(b"late")

    def redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    srv.routes.update(
        {
            "/photo.png": lambda h: h.body(PNG),
            "/big": lambda h: h.body(b"x" * 2000),
            "/big-no-length": lambda h: h.body(b"x" * 2000, length=False),
            "/redirect": lambda h: h.redirect("/photo.png"),
            "/to-private": lambda h: h.redirect("http://10.1.2.3/secret"),
            "/to-metadata": lambda h: h.redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-ftp": lambda h: h.redirect("ftp://example.com/x"),
            "/loop": lambda h: h.redirect("/loop"),
            "/slow": _Handler.slow,
        }
    )
    # A short poll interval only makes shutdown() return quickly at teardown.
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.release.set()
        srv.shutdown()
        srv.server_close()
        thread.join()


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A job's working directory: ``drive/`` and its own TMPDIR, as the runner sets up."""
    work = tmp_path / "work"
    (work / "drive").mkdir(parents=True)
    (work / "tmp").mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("TMPDIR", str(work / "tmp"))
    monkeypatch.delenv(_fetch.ALLOW_PRIVATE_ENV, raising=False)
    return work


@pytest.fixture
def allow_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_fetch.ALLOW_PRIVATE_ENV, "1")


def temp_files(job: Path) -> list[Path]:
    return sorted((job / "tmp").iterdir())


# -- public surface ------------------------------------------------------------------


def test_public_surface_is_pinned() -> None:
    assert puras.__all__ == ["PurasError", "load_bytes", "load_path", "media", "secret"]
    assert issubclass(PurasError, ValueError)


def test_sdk_imports_only_the_standard_library() -> None:
    for path in SDK_SRC.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            for root in roots:
                assert root == "puras" or root in sys.stdlib_module_names, (path.name, root)


# -- drive paths ---------------------------------------------------------------------


def test_drive_path_is_read_in_place(job: Path) -> None:
    (job / "drive/uploads").mkdir()
    (job / "drive/uploads/a.png").write_bytes(PNG)
    for source in ({"drive_path": "uploads/a.png"}, "uploads/a.png"):
        path = load_path(source, suffix=".jpg")  # the suffix does not apply in place
        assert path == job / "drive/uploads/a.png"
        assert load_bytes(source) == PNG
    assert temp_files(job) == []


def test_drive_path_with_extra_keys_of_an_upload_response(job: Path) -> None:
    (job / "drive/a.png").write_bytes(PNG)
    upload = {"drive_path": "a.png", "signed_url": "https://x", "bytes": 3, "full_path": "p/a.png"}
    assert load_bytes(upload) == PNG


def test_links_inside_the_drive_are_followed(job: Path) -> None:
    (job / "drive/real.png").write_bytes(PNG)
    (job / "drive/alias.png").symlink_to(job / "drive/real.png")
    assert load_bytes("alias.png") == PNG


@pytest.mark.parametrize(
    "path",
    [
        "../secret.txt",
        "uploads/../../secret.txt",
        "..",
        "%2e%2e/secret.txt",
        "%2E%2E/secret.txt",
        "%252e%252e/secret.txt",
        "uploads/..%2f..%2fsecret.txt",
        "/etc/passwd",
        "%2fetc/passwd",
        "uploads\\..\\..\\secret.txt",
        "a\x00b",
        "a%00b",
        "a\nb",
    ],
)
def test_drive_traversal_is_refused(job: Path, path: str) -> None:
    (job / "secret.txt").write_text("secret")
    (job / "drive/uploads").mkdir()
    for source in (path, {"drive_path": path}):
        with pytest.raises(PurasError, match="is refused"):
            load_bytes(source)
        with pytest.raises(PurasError, match="is refused"):
            load_path(source)


def test_a_link_out_of_the_drive_is_refused(job: Path) -> None:
    (job / "secret.txt").write_text("secret")
    (job / "drive/escape").symlink_to(job)
    with pytest.raises(PurasError, match="outside the drive"):
        load_bytes("escape/secret.txt")


def test_missing_drive_file(job: Path) -> None:
    with pytest.raises(PurasError, match="not found"):
        load_path({"drive_path": "uploads/none.png"})


def test_drive_folder_is_not_a_file(job: Path) -> None:
    (job / "drive/uploads").mkdir()
    with pytest.raises(PurasError, match="is a folder"):
        load_bytes("uploads")


def test_no_drive_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PurasError, match=r"no \./drive/ folder"):
        load_bytes("a.png")


# -- inline data ---------------------------------------------------------------------


def test_data_url(job: Path) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert load_bytes(url) == PNG
    assert load_bytes({"data": url}) == PNG
    path = load_path({"data": url})
    assert path.read_bytes() == PNG
    assert path.parent == job / "tmp"
    assert path.suffix == ".png"  # from the media type when no suffix is given


def test_suffix_names_the_temp_file(job: Path) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert load_path(url, suffix=".img").suffix == ".img"
    assert load_path(url, suffix="jpg").name.endswith(".jpg")


def test_suffix_cannot_be_a_path(job: Path) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    with pytest.raises(PurasError, match="suffix"):
        load_path(url, suffix="/../../x")
    assert temp_files(job) == []


def test_raw_base64(job: Path) -> None:
    raw = base64.b64encode(PNG).decode()
    assert load_bytes({"data": raw}) == PNG
    wrapped = "\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))
    assert load_bytes({"data": wrapped}) == PNG
    assert load_bytes({"data": base64.urlsafe_b64encode(PNG).decode().rstrip("=")}) == PNG
    path = load_path({"data": raw}, suffix=".bin")
    assert path.read_bytes() == PNG
    assert path.parent == job / "tmp"


def test_attachment_style_base64_key(job: Path) -> None:
    raw = base64.b64encode(PNG).decode()
    assert load_bytes({"base64": raw, "media_type": "image/png"}) == PNG


def test_plain_data_url(job: Path) -> None:
    assert load_bytes("data:text/plain,hello%20world") == b"hello world"


@pytest.mark.parametrize("data", ["not base64 !!", "data:image/png;base64,@@@", "data:no-comma"])
def test_bad_data(job: Path, data: str) -> None:
    with pytest.raises(PurasError):
        load_bytes({"data": data})


def test_bare_base64_string_is_a_drive_path(job: Path) -> None:
    with pytest.raises(PurasError, match="not found"):
        load_bytes(base64.b64encode(b"hello").decode())


@pytest.mark.parametrize(
    "source",
    [
        {},
        {"drive_path": "a", "url": "https://example.com/a"},
        {"media_type": "image/png"},
        {"drive_path": 3},
        {"url": ""},
        "",
        42,
        None,
        b"bytes",
        "ftp://example.com/a.png",
        "file:///etc/passwd",
    ],
)
def test_unknown_shapes_are_refused(job: Path, source: object) -> None:
    with pytest.raises(PurasError):
        load_bytes(source)  # type: ignore[arg-type]


# -- URLs ----------------------------------------------------------------------------


def test_url_is_fetched(job: Path, server: _Server, allow_private: None) -> None:
    assert load_bytes(server.url("/photo.png")) == PNG
    path = load_path({"url": server.url("/photo.png")})
    assert path.read_bytes() == PNG
    assert path.parent == job / "tmp"
    assert path.suffix == ".png"  # from the URL when no suffix is given
    assert load_path(server.url("/photo.png"), suffix=".img").suffix == ".img"
    assert server.seen[0] == ("/photo.png", f"127.0.0.1:{server.port}")


def test_host_name_is_sent_while_connecting_to_the_checked_address(
    job: Path, server: _Server, allow_private: None
) -> None:
    assert load_bytes(server.url("/photo.png", host="localhost")) == PNG
    assert server.seen == [("/photo.png", f"localhost:{server.port}")]


def test_the_checked_address_is_the_one_connected_to(
    job: Path, server: _Server, allow_private: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebinding DNS server answers a harmless address once, then another: the
    # download must use the first answer (the checked one), never resolve again.
    real = socket.getaddrinfo
    answers = 0

    def rebinding(host: str, *args: Any, **kwargs: Any) -> Any:
        nonlocal answers
        if host != "rebind.test":
            return real(host, *args, **kwargs)
        answers += 1
        if answers > 1:
            raise OSError("resolved a second time")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    assert load_bytes(server.url("/photo.png", host="rebind.test")) == PNG
    assert answers == 1
    assert server.seen == [("/photo.png", f"rebind.test:{server.port}")]


def test_temp_folder_is_read_at_each_call(job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = "data:text/plain;base64," + base64.b64encode(b"x").decode()
    other = job / "other-tmp"
    other.mkdir()
    assert load_path(url).parent == job / "tmp"
    monkeypatch.setenv("TMPDIR", str(other))
    assert load_path(url).parent == other


def test_private_url_is_refused_without_the_allowlist(job: Path, server: _Server) -> None:
    with pytest.raises(PurasError, match="loopback address"):
        load_bytes(server.url("/photo.png"))
    with pytest.raises(PurasError, match="loopback address"):
        load_path({"url": server.url("/photo.png")})
    assert server.seen == []  # refused before connecting
    assert temp_files(job) == []


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("localhost", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - the address under test
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "non-public"),
    ],
)
def test_non_public_addresses_are_refused(job: Path, host: str, kind: str) -> None:
    with pytest.raises(PurasError, match=f"{kind} address"):
        load_bytes(f"http://{host}:9/x")


def test_redirect_is_followed(job: Path, server: _Server, allow_private: None) -> None:
    assert load_bytes(server.url("/redirect")) == PNG
    assert [p for p, _ in server.seen] == ["/redirect", "/photo.png"]


@pytest.mark.parametrize(
    ("route", "kind"), [("/to-private", "private"), ("/to-metadata", "link-local")]
)
def test_redirect_to_a_private_address_is_refused(
    job: Path, server: _Server, monkeypatch: pytest.MonkeyPatch, route: str, kind: str
) -> None:
    # The operator allows the loopback network only: the first hop passes, the
    # redirect target is checked again and refused.
    monkeypatch.setenv(_fetch.ALLOW_PRIVATE_ENV, "127.0.0.0/8")
    with pytest.raises(PurasError, match=f"{kind} address"):
        load_bytes(server.url(route))
    assert [p for p, _ in server.seen] == [route]


def test_redirect_to_another_scheme_is_refused(
    job: Path, server: _Server, allow_private: None
) -> None:
    with pytest.raises(PurasError, match="only http:// and https://"):
        load_bytes(server.url("/to-ftp"))


def test_redirect_limit(job: Path, server: _Server, allow_private: None) -> None:
    with pytest.raises(PurasError, match="redirected more than 5 times"):
        load_bytes(server.url("/loop"))
    assert len(server.seen) == 6


@pytest.mark.parametrize("route", ["/big", "/big-no-length"])
def test_size_cap(
    job: Path, server: _Server, allow_private: None, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    monkeypatch.setattr(_fetch, "MAX_DOWNLOAD_BYTES", 1000)
    with pytest.raises(PurasError, match="download limit"):
        load_bytes(server.url(route))
    with pytest.raises(PurasError, match="download limit"):
        load_path(server.url(route))
    assert temp_files(job) == []  # the partial download is removed


def test_size_cap_is_inclusive(
    job: Path, server: _Server, allow_private: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fetch, "MAX_DOWNLOAD_BYTES", 2000)
    assert len(load_bytes(server.url("/big-no-length"))) == 2000


def test_default_limits() -> None:
    assert _fetch.MAX_DOWNLOAD_BYTES == 50 * 1024 * 1024
    assert _fetch.TIMEOUT_SECONDS == 60
    assert _fetch.MAX_REDIRECTS == 5


def test_http_error_status(job: Path, server: _Server, allow_private: None) -> None:
    with pytest.raises(PurasError, match="HTTP 404"):
        load_bytes(server.url("/nothing-here"))


def test_timeout(
    job: Path, server: _Server, allow_private: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_fetch, "TIMEOUT_SECONDS", 0.3)
    with pytest.raises(PurasError, match="took longer than"):
        load_bytes(server.url("/slow"))


def test_credentials_in_urls_are_refused(job: Path) -> None:
    with pytest.raises(PurasError, match="user name or password"):
        load_bytes("https://user:pw@example.com/a.png")


def test_invalid_allowlist_is_an_error(job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_fetch.ALLOW_PRIVATE_ENV, "everything")
    with pytest.raises(PurasError, match=_fetch.ALLOW_PRIVATE_ENV):
        load_bytes("http://127.0.0.1:9/x")


# -- secrets -------------------------------------------------------------------------


def test_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert secret("OPENAI_API_KEY") == "sk-test"


def test_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(PurasError, match="secret NOT_SET_ANYWHERE is not set") as ei:
        secret("NOT_SET_ANYWHERE")
    # The message says how to set it.
    assert "PUT /v1/secrets/NOT_SET_ANYWHERE" in str(ei.value)
    assert "puras secrets set NOT_SET_ANYWHERE" in str(ei.value)


@pytest.mark.parametrize("name", ["lower", "1ABC", "A-B", "", "PATH/X"])
def test_invalid_secret_name(name: str) -> None:
    with pytest.raises(PurasError, match="not a secret name"):
        secret(name)
