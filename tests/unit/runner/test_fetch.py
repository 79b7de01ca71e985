"""The agent's fetcher against a real HTTP server on loopback (allowed here by the
operator's networks, as loopback is refused by default: see tests/security)."""

from __future__ import annotations

import gzip
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback_http import LoopbackServer, Reply, Seen, serve

from puras_runner.adapters.fetch import MAX_REDIRECTS, SafeFetcher
from puras_runner.domain.agent.errors import FetchFailed

MB = 1024 * 1024
LOOPBACK = ["127.0.0.0/8"]


def _text(_: Seen) -> Reply:
    return Reply(
        body="caf\u00e9 cr\u00e8me".encode("latin-1"),
        headers={"Content-Type": 'text/plain; charset="ISO-8859-1"'},
    )


def _echo_host(seen: Seen) -> Reply:
    return Reply(body=seen.headers.get("host", "").encode(), headers={"Content-Type": "text/plain"})


ROUTES = {
    "/text": _text,
    "/host": _echo_host,
    "/html": lambda _: Reply(body=b"<p>hi</p>", headers={"Content-Type": "text/html"}),
    "/bare": lambda _: Reply(body=b"\x89PNG"),
    "/redirect": lambda _: Reply(302, headers={"Location": "/hop"}),
    "/hop": lambda _: Reply(301, headers={"Location": "/text"}),
    "/loop": lambda _: Reply(302, headers={"Location": "/loop"}),
    "/no-location": lambda _: Reply(302),
    "/declared-big": lambda _: Reply(body=b"x" * (2 * MB)),
    "/streamed-big": lambda _: Reply(body=b"x" * (2 * MB), content_length=False),
    "/exact": lambda _: Reply(body=b"x" * MB, content_length=False),
    "/stall": lambda _: Reply(body=b"late", hold=True),
    "/gone": lambda _: Reply(410, b"gone"),
    # 2 KB on the wire, 2 MB once inflated.
    "/gzip-bomb": lambda _: Reply(
        body=gzip.compress(b"\0" * (2 * MB)), headers={"Content-Encoding": "gzip"}
    ),
    "/gzip": lambda _: Reply(
        body=gzip.compress(b"small"),
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
    ),
}


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with serve(ROUTES) as srv:
        yield srv


@pytest.fixture
def fetcher() -> SafeFetcher:
    return SafeFetcher(allow_networks=LOOPBACK)


async def test_fetches_text_with_its_type_and_charset(
    server: LoopbackServer, fetcher: SafeFetcher
) -> None:
    got = await fetcher.get(server.url("/text"), max_bytes=MB, timeout_s=5)
    assert got.status == 200
    assert got.url == server.url("/text")
    assert got.media_type == "text/plain"
    assert got.charset == "ISO-8859-1"
    assert got.data.decode(got.charset) == "caf\u00e9 cr\u00e8me"


async def test_sends_a_user_agent_naming_puras(
    server: LoopbackServer, fetcher: SafeFetcher
) -> None:
    await fetcher.get(server.url("/html"), max_bytes=MB, timeout_s=5)
    assert "Puras" in server.seen[-1].headers["user-agent"]


async def test_no_content_type_is_an_empty_media_type(
    server: LoopbackServer, fetcher: SafeFetcher
) -> None:
    got = await fetcher.get(server.url("/bare"), max_bytes=MB, timeout_s=5)
    assert (got.media_type, got.charset, got.data) == ("", None, b"\x89PNG")


async def test_follows_redirects_and_reports_the_final_url(
    server: LoopbackServer, fetcher: SafeFetcher
) -> None:
    got = await fetcher.get(server.url("/redirect"), max_bytes=MB, timeout_s=5)
    assert got.url == server.url("/text")
    assert [s.path for s in server.seen] == ["/redirect", "/hop", "/text"]


async def test_too_many_redirects_fail(server: LoopbackServer, fetcher: SafeFetcher) -> None:
    with pytest.raises(FetchFailed, match=f"redirected more than {MAX_REDIRECTS} times"):
        await fetcher.get(server.url("/loop"), max_bytes=MB, timeout_s=5)
    assert len(server.seen) == MAX_REDIRECTS + 1


async def test_a_redirect_without_location_fails(
    server: LoopbackServer, fetcher: SafeFetcher
) -> None:
    with pytest.raises(FetchFailed, match="HTTP 302 without a Location"):
        await fetcher.get(server.url("/no-location"), max_bytes=MB, timeout_s=5)


@pytest.mark.parametrize("path", ["/declared-big", "/streamed-big", "/gzip-bomb"])
async def test_a_body_over_the_cap_fails_naming_the_cap(
    server: LoopbackServer, fetcher: SafeFetcher, path: str
) -> None:
    with pytest.raises(FetchFailed, match=r"larger than the 1 MB limit"):
        await fetcher.get(server.url(path), max_bytes=MB, timeout_s=5)


async def test_a_compressed_body_is_inflated(server: LoopbackServer, fetcher: SafeFetcher) -> None:
    got = await fetcher.get(server.url("/gzip"), max_bytes=MB, timeout_s=5)
    assert got.data == b"small"


async def test_a_body_of_exactly_the_cap_is_kept(
    server: LoopbackServer, fetcher: SafeFetcher
) -> None:
    got = await fetcher.get(server.url("/exact"), max_bytes=MB, timeout_s=5)
    assert len(got.data) == MB


async def test_a_stalled_server_hits_the_deadline(
    server: LoopbackServer, fetcher: SafeFetcher
) -> None:
    with pytest.raises(FetchFailed, match=r"took longer than 0.3 s"):
        await fetcher.get(server.url("/stall"), max_bytes=MB, timeout_s=0.3)


@pytest.mark.parametrize(("path", "status"), [("/missing", 404), ("/gone", 410)])
async def test_an_http_error_fails_with_its_status(
    server: LoopbackServer, fetcher: SafeFetcher, path: str, status: int
) -> None:
    with pytest.raises(FetchFailed) as caught:
        await fetcher.get(server.url(path), max_bytes=MB, timeout_s=5)
    assert str(caught.value) == f"HTTP {status} from {server.url(path)}"


@pytest.mark.parametrize(
    "url", ["ftp://example.com/f", "file:///etc/passwd", "gopher://x/", "javascript:alert(1)"]
)
async def test_only_http_and_https_are_fetched(fetcher: SafeFetcher, url: str) -> None:
    with pytest.raises(FetchFailed, match=r"only http:// and https:// URLs"):
        await fetcher.get(url, max_bytes=MB, timeout_s=5)


async def test_a_relative_url_is_refused(fetcher: SafeFetcher) -> None:
    with pytest.raises(FetchFailed, match=r"only http:// and https:// URLs"):
        await fetcher.get("/etc/passwd", max_bytes=MB, timeout_s=5)


@pytest.mark.parametrize("userinfo", ["user:secret@", "user@", ":pw@"])
async def test_credentials_in_the_url_are_refused(
    server: LoopbackServer, fetcher: SafeFetcher, userinfo: str
) -> None:
    url = f"http://{userinfo}127.0.0.1:{server.port}/text"
    with pytest.raises(FetchFailed, match="carries a user name or password"):
        await fetcher.get(url, max_bytes=MB, timeout_s=5)
    assert server.seen == []


async def test_a_url_without_host_is_refused(fetcher: SafeFetcher) -> None:
    with pytest.raises(FetchFailed, match="has no host name"):
        await fetcher.get("http:///path", max_bytes=MB, timeout_s=5)


async def test_the_connection_goes_to_the_resolved_address_with_the_urls_host(
    server: LoopbackServer,
) -> None:
    # A name the system cannot resolve: the fetch reaches the server only through the
    # address our resolver checked, and the request still names the URL's host.
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    fetcher = SafeFetcher(allow_networks=LOOPBACK, resolver=resolver)
    got = await fetcher.get(f"http://site.invalid:{server.port}/host", max_bytes=MB, timeout_s=5)
    assert got.data == f"site.invalid:{server.port}".encode()
    assert asked == ["site.invalid"]


async def test_an_unresolvable_host_fails(fetcher: SafeFetcher) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        raise OSError(f"[Errno -2] Name or service not known: {host}")

    fetcher = SafeFetcher(resolver=resolver)
    with pytest.raises(FetchFailed, match=r"cannot resolve nowhere\.invalid"):
        await fetcher.get("https://nowhere.invalid/", max_bytes=MB, timeout_s=5)


async def test_a_closed_port_fails_to_connect(fetcher: SafeFetcher) -> None:
    with serve({}) as srv:
        url = srv.url("/")
    with pytest.raises(FetchFailed, match=r"cannot connect to 127\.0\.0\.1"):
        await fetcher.get(url, max_bytes=MB, timeout_s=5)


def test_a_bad_allowed_network_is_an_operator_error() -> None:
    with pytest.raises(ValueError, match=r"allow_networks: 'ten' is not a network"):
        SafeFetcher(allow_networks=["ten"])


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for ``site.test`` (its own trust anchor)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=site.test",
         "-addext", "subjectAltName=DNS:site.test"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path]) -> Iterator[tuple[LoopbackServer, list[str]]]:
    cert, key = certificate
    names: list[str] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        names.append(name or "")

    context.sni_callback = sni
    with serve(ROUTES, tls=context) as srv:
        yield srv, names


def _trusting(cert: Path) -> SafeFetcher:
    async def dns(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    context = ssl.create_default_context(cafile=str(cert))
    return SafeFetcher(allow_networks=LOOPBACK, resolver=dns, ssl_context=context)


async def test_https_to_the_checked_address_verifies_the_urls_host_name(
    tls_server: tuple[LoopbackServer, list[str]], certificate: tuple[Path, Path]
) -> None:
    server, names = tls_server
    fetcher = _trusting(certificate[0])
    got = await fetcher.get(f"https://site.test:{server.port}/host", max_bytes=MB, timeout_s=5)
    assert got.data == f"site.test:{server.port}".encode()
    assert names == ["site.test"]  # SNI carries the URL's host, not the address


async def test_https_with_a_certificate_for_another_name_fails(
    tls_server: tuple[LoopbackServer, list[str]], certificate: tuple[Path, Path]
) -> None:
    server, _ = tls_server
    fetcher = _trusting(certificate[0])
    with pytest.raises(FetchFailed, match="certificate verify failed"):
        await fetcher.get(f"https://other.test:{server.port}/host", max_bytes=MB, timeout_s=5)
    assert server.seen == []


async def test_a_redirect_to_an_invalid_url_fails() -> None:
    routes = {"/": lambda _: Reply(302, headers={"Location": "http://h:abc/"})}
    fetcher = SafeFetcher(allow_networks=LOOPBACK)
    with serve(routes) as srv, pytest.raises(FetchFailed, match="Invalid URL in location header"):
        await fetcher.get(srv.url("/"), max_bytes=MB, timeout_s=5)
