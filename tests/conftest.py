"""Shared fixtures: real servers on free loopback ports, started by the harness.

* ``nats_server``: a fresh nats-server with JetStream and its own store dir per test,
  with the services' identities and permissions (``puras_common.bus.permissions``) and
  fresh passwords: anonymous connections are refused. Its ``url`` carries the
  privileged ``ops`` identity, which the harness (``bus``) and tests use to set up and
  inspect; ``nats_server.credentials("runner")`` logs in as a service.
* ``pg_server``: one Postgres per test session; ``database_url`` is a fresh database
  per test (created, never cleaned by deleting rows), as the superuser (its password in
  the URL; nothing logs in without one over TCP).
* ``s3_server`` / ``s3_bucket``: an S3-compatible server (moto) per session and a fresh
  bucket per test (``tests/s3_fixtures.py``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from s3_fixtures import s3_bucket, s3_server

from puras_cli.infra.nats_server import NatsServer, generate_passwords
from puras_cli.infra.postgres import PostgresServer

__all__ = ["bus", "database_url", "nats_server", "pg_server", "s3_bucket", "s3_server"]

_db_counter = itertools.count(1)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    srv = NatsServer(
        store_dir=tmp_path / "nats",
        log_file=tmp_path / "nats.log",
        passwords=generate_passwords(),
    ).start()
    try:
        yield srv
    finally:
        srv.cleanup()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    external = os.environ.get("PURAS_TEST_DATABASE_URL")
    if external:
        pytest.skip("external Postgres configured; pg_server fixture not used")
    # Not under pytest's tmp dir: pytest resets its root to mode 0700 when another session
    # starts, and Postgres runs as its own system user that must traverse to its files.
    base = Path(tempfile.mkdtemp(prefix="puras-pg-test-"))
    srv = PostgresServer(data_dir=base, fsync=False, log_file=base / "postgres.log").start()
    try:
        yield srv
    finally:
        srv.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def database_url(pg_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    name = f"t{os.getpid()}_{next(_db_counter)}"
    return pg_server.create_database(name)


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[object]:
    from puras_common.bus import connect, ensure_streams

    b = await connect(nats_server.url, name="test")
    await ensure_streams(b.js)
    try:
        yield b
    finally:
        await b.close()
