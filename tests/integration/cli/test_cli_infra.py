"""The local infrastructure launchers against the real binaries (nats-server, Postgres)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import asyncpg
import nats
import pytest

from puras_cli.infra.nats_server import NatsServer
from puras_cli.infra.postgres import PostgresServer

pytestmark = pytest.mark.integration


async def test_nats_restart_keeps_the_jetstream_store(tmp_path: Path) -> None:
    srv = NatsServer(store_dir=tmp_path / "nats", log_file=tmp_path / "nats.log").start()
    try:
        nc = await nats.connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="KEEP", subjects=["keep.>"])
        ack = await js.publish("keep.a", b"one")
        await nc.close()
        first, port = srv.proc, srv.port
        assert first is not None

        srv.restart()
        assert first.poll() is not None  # the old server is gone, not just replaced
        assert srv.port == port
        assert srv.proc is not None
        assert srv.proc.pid != first.pid

        nc = await nats.connect(srv.url)
        msg = await nc.jetstream().get_msg("KEEP", ack.seq)
        await nc.close()
        assert msg.data == b"one"
    finally:
        srv.cleanup()
    assert srv.proc is None


async def test_postgres_start_create_database_and_stop(work_dir: Path) -> None:
    srv = PostgresServer(data_dir=work_dir / "pg", fsync=False, log_file=work_dir / "pg.log")
    srv.start()
    try:
        dsn = srv.create_database("alpha")
        assert dsn.endswith("/alpha")
        with pytest.raises(subprocess.CalledProcessError):
            srv.create_database("alpha")  # already there: create is not idempotent
        assert srv.ensure_database("alpha") == dsn  # ensure is
        beta = srv.ensure_database("beta")
        conn = await asyncpg.connect(beta)
        try:
            assert await conn.fetchval("SELECT current_database()") == "beta"
        finally:
            await conn.close()
        proc = srv.proc
        assert proc is not None
    finally:
        srv.stop()
    assert proc.poll() is not None
    assert srv.proc is None

    # The data dir is kept: a second start finds both databases.
    srv.start()
    try:
        conn = await asyncpg.connect(srv.dsn("postgres"))
        try:
            names = {r[0] for r in await conn.fetch("SELECT datname FROM pg_database")}
        finally:
            await conn.close()
        assert {"alpha", "beta"} <= names
    finally:
        srv.cleanup()
