"""A real S3-compatible server on loopback for the tests: moto's server, started once per
session on a free port, in its own process. Each test gets a fresh bucket of its own
(``s3_bucket``), so nothing is shared or cleaned up between tests.

Exported to every test by ``tests/conftest.py``.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from minio import Minio

from puras_cli.infra.ports import free_port, wait_for_port

__all__ = ["S3Server", "s3_bucket", "s3_server"]

START_TIMEOUT_S = 60.0
"""moto imports every AWS service model at start: slow on a busy machine."""
ACCESS_KEY = "puras-test-access"
SECRET_KEY = "puras-test-secret-key"
_buckets = itertools.count(1)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    """``http://127.0.0.1:<port>``."""
    host: str
    """``127.0.0.1:<port>``, as ``Minio`` takes it."""
    log_file: Path

    def client(self) -> Minio:
        return Minio(self.host, access_key=ACCESS_KEY, secret_key=SECRET_KEY, secure=False)


def _wait_until_serving(endpoint: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers HTTP (a listening port may not serve yet), bounded."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as reply:  # noqa: S310 - loopback
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"moto server not serving after {START_TIMEOUT_S:.0f}s; see {log}")
        # Each request is the condition waited on; the pause only paces the retries.
        time.sleep(0.05)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for_port(port, timeout=START_TIMEOUT_S, proc=proc, what="moto server")
        endpoint = f"http://127.0.0.1:{port}"
        _wait_until_serving(endpoint, proc, log)
        yield S3Server(endpoint=endpoint, host=f"127.0.0.1:{port}", log_file=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new, empty bucket on the session's server."""
    name = f"drive-{os.getpid()}-{next(_buckets)}"
    s3_server.client().make_bucket(name)
    return name
