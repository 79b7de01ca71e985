"""Attacks from a ``requirements.txt`` build: package build backends run code nobody
reviewed, so a build is confined like a job (the project's uid, a jail, a time limit, a
network that reaches the package index and nothing else). The index here is a local one
(on a loopback address the operator configured) serving an sdist whose in-tree build
backend attacks the runner as soon as uv imports it."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
from urllib.parse import urlsplit

import pytest
from runner_helpers import Harness, StartRunner, skill_files

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the job sandbox needs a root runner"),
]

BACKEND = """
import ctypes, errno, os, socket, time

def _try(fn):
    try:
        fn()
        return "ok"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))

def _connect(host, port):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
    finally:
        s.close()

if os.environ.get("EVIL_SLEEP") or os.path.exists("/build/sleep"):
    time.sleep(600)

findings = {
    "uid": os.getuid(),
    "env": sorted(os.environ),
    "environ_1": _try(lambda: open("/proc/1/environ").read()),
    "runner_environ": _try(lambda: open("/proc/%RUNNER%/environ").read()),
    "nats": _try(lambda: _connect("127.0.0.1", %NATS%)),
    "write_etc": _try(lambda: open("/etc/evil", "w").write("x")),
    "data_dir": os.path.exists("%DATA%"),
    "bundle": os.path.exists("/bundle"),
}
raise RuntimeError("EVIL-FINDINGS " + repr(findings))
"""

PYPROJECT = """
[build-system]
requires = []
build-backend = "backend"
backend-path = ["."]

[project]
name = "evilpkg"
version = "1.0"
"""


def _sdist(backend: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (
            ("pyproject.toml", PYPROJECT),
            ("backend.py", backend),
            ("PKG-INFO", "Metadata-Version: 2.1\nName: evilpkg\nVersion: 1.0\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(f"evilpkg-1.0/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def _index(sdist: bytes, port: int = 0) -> tuple[asyncio.AbstractServer, int]:
    digest = hashlib.sha256(sdist).hexdigest()
    page = (
        f'<html><body><a href="/files/evilpkg-1.0.tar.gz#sha256={digest}">'
        "evilpkg-1.0.tar.gz</a></body></html>"
    ).encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        path = head.split(b" ", 2)[1].decode()
        if path.startswith("/files/"):
            body, kind, status = sdist, "application/gzip", "200 OK"
        elif path.rstrip("/").endswith("/simple/evilpkg"):
            body, kind, status = page, "text/html", "200 OK"
        else:
            body, kind, status = b"not found", "text/plain", "404 Not Found"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.2", port, reuse_address=True)
    return server, server.sockets[0].getsockname()[1]


OK = "def run(inputs):\n    return {'ok': True}\n"


async def test_a_build_backend_sees_nothing_of_the_runner(
    harness: Harness, start: StartRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PURAS_RUNNER_BUILD_TEST_MARKER", "runner-only-secret-31c")
    nats_port = urlsplit(harness.nats_url).port
    data_dir = harness.tmp / "runner"
    backend = (
        BACKEND.replace("%RUNNER%", str(os.getpid()))
        .replace("%NATS%", str(nats_port))
        .replace("%DATA%", str(data_dir))
    )
    server, port = await _index(_sdist(backend))
    async with server:
        await start(build_index_urls=[f"http://127.0.0.2:{port}/simple"])
        files = skill_files("echo", OK)
        files["requirements.txt"] = "evilpkg==1.0\n"
        dep = await harness.deploy(files)
        watch = await harness.run(dep, "echo")
    error = watch.of("job.failed")[0].error
    assert error.startswith("could not prepare the deployment's virtualenv")
    assert "EVIL-FINDINGS" in error, error  # the backend ran, confined:
    findings = error[error.index("EVIL-FINDINGS") :]
    assert "'uid': 0" not in findings
    assert "runner-only-secret-31c" not in error
    assert "PURAS_RUNNER" not in error
    assert "'runner_environ': 'ENOENT'" in findings
    assert "'nats': 'ECONNREFUSED'" in findings or "'nats': 'ENETUNREACH'" in findings
    assert "'write_etc': 'EROFS'" in findings
    assert "'data_dir': False" in findings
    assert "'bundle': False" in findings
    # No host path in what the job's error shows.
    assert str(data_dir) not in error


async def test_a_build_past_its_time_limit_is_stopped(harness: Harness, start: StartRunner) -> None:
    backend = "import time\ntime.sleep(600)\n"
    server, port = await _index(_sdist(backend))
    async with server:
        await start(build_index_urls=[f"http://127.0.0.2:{port}/simple"], build_timeout_s=3)
        files = skill_files("echo", OK)
        files["requirements.txt"] = "evilpkg==1.0\n"
        dep = await harness.deploy(files)
        watch = await harness.run(dep, "echo")
    assert watch.of("job.failed")[0].error == (
        "could not prepare the deployment's virtualenv: installing requirements.txt took "
        "longer than 3s (the build time limit)"
    )


PROBE_NETWORK = """
import urllib.error, urllib.request

def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError as exc:
        return str(exc.reason)

raise RuntimeError("NET " + repr({
    "index": _get("%INDEX%/evilpkg/"),
    "other_host": _get("http://127.0.0.3/"),
    "pypi": _get("https://pypi.org/simple/"),
    "metadata": _get("http://169.254.169.254/"),
}))
"""


async def test_a_build_reaches_only_the_index(harness: Harness, start: StartRunner) -> None:
    server, port = await _index(b"")
    index = f"http://127.0.0.2:{port}/simple"
    server.close()
    server, _ = await _index(_sdist(PROBE_NETWORK.replace("%INDEX%", index)), port=port)
    async with server:
        await start(build_index_urls=[index])
        files = skill_files("echo", OK)
        files["requirements.txt"] = "evilpkg==1.0\n"
        dep = await harness.deploy(files)
        watch = await harness.run(dep, "echo")
    error = watch.of("job.failed")[0].error
    net = error[error.index("NET {") :]
    assert "'index': 200" in net
    assert "'other_host': 403" in net
    assert "'metadata': 403" in net
    # https through the proxy: the refused CONNECT surfaces as a failed tunnel.
    assert "'pypi': 'Tunnel connection failed: 403" in net
