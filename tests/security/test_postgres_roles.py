"""Attacks on the projections through Postgres, against a real server with the roles the
dev stack provisions (``puras_cli.infra.pg_roles``): each service's role owns its tables
and cannot read or write another's (ARCHITECTURE §7); nothing logs in over TCP without a
password."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from puras_billing.adapters.projection import LedgerProjection
from puras_billing.settings import BillingSettings
from puras_cli.infra.pg_roles import database_of, provision, role_url
from puras_cli.infra.postgres import PostgresServer, postgres_bin_dir
from puras_common.db import DB_ROLES
from puras_common.projection.runner import ensure_projection_schema
from puras_drive.adapters.projection import DriveFilesProjection
from puras_gateway.adapters.key_use import KeyLastUsedWriter
from puras_gateway.adapters.projections import GATEWAY_PROJECTIONS

Login = Callable[[str], Awaitable[asyncpg.Connection]]


@pytest.fixture
async def login(database_url: str) -> AsyncIterator[Login]:
    """Roles provisioned in a fresh database, and each service's tables created by its
    own role the way its projectors create them at start."""
    passwords = {svc: secrets.token_urlsafe(16) for svc in DB_ROLES}
    await provision(database_url, database_of(database_url), passwords)
    opened: list[asyncpg.Connection] = []

    async def _login(service: str) -> asyncpg.Connection:
        conn = await asyncpg.connect(
            role_url(database_url, DB_ROLES[service].role), password=passwords[service]
        )
        opened.append(conn)
        return conn

    gateway, billing = await _login("gateway"), await _login("billing")
    for proj in GATEWAY_PROJECTIONS:
        await ensure_projection_schema(gateway, proj(), "public")
    await gateway.execute(KeyLastUsedWriter.DDL)
    await ensure_projection_schema(billing, LedgerProjection(), "public")
    await billing.execute(
        "INSERT INTO project_balances (project_id, credit_balance_micros, last_seq) "
        "VALUES ('p1', 5, 1)"
    )
    await gateway.execute(
        "INSERT INTO api_keys (prefix, project_id, secret_sha256, created_by, created_at) "
        "VALUES ('k1', 'p1', 'h', 'admin', now())"
    )
    yield _login
    for c in opened:
        await c.close()


async def test_billing_cannot_read_or_write_the_gateways_tables(login: Login) -> None:
    billing = await login("billing")
    for sql in (
        "SELECT * FROM api_keys",
        "SELECT * FROM jobs",
        "UPDATE jobs SET status = 'succeeded'",
        "INSERT INTO api_keys (prefix, project_id, secret_sha256, created_by, created_at) "
        "VALUES ('evil', 'p2', 'h', 'billing', now())",
        "DELETE FROM deployments",
        "DROP TABLE api_keys",
        "ALTER TABLE jobs ADD COLUMN x int",
        "TRUNCATE job_events",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await billing.execute(sql)


async def test_the_drive_owns_its_file_table_and_reaches_no_other(login: Login) -> None:
    drive = await login("drive")
    await ensure_projection_schema(drive, DriveFilesProjection(), "public")
    assert await drive.fetchval("SELECT count(*) FROM drive_files") == 0
    for sql in (
        "SELECT * FROM api_keys",
        "SELECT * FROM project_balances",
        "UPDATE jobs SET status = 'succeeded'",
        "DELETE FROM ledger_entries",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await drive.execute(sql)
    # Row-level security: another projection's checkpoint is not there for it.
    moved = "UPDATE projection_checkpoints SET last_seq = 0 WHERE name = 'ledger'"
    assert await drive.execute(moved) == "UPDATE 0"
    for other in ("gateway", "billing"):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await (await login(other)).execute("SELECT * FROM drive_files")


async def test_the_gateway_reads_balances_but_cannot_change_the_ledger(login: Login) -> None:
    gateway = await login("gateway")
    assert await gateway.fetchval("SELECT credit_balance_micros FROM project_balances") == 5
    for sql in (
        "UPDATE project_balances SET credit_balance_micros = 1000000000000",
        "INSERT INTO ledger_entries (entry_id, project_id, kind, micros, note, at, seq) "
        "VALUES ('e', 'p1', 'grant', 1000000000000, '', now(), 9)",
        "DELETE FROM ledger_entries",
        "DROP TABLE project_balances",
        "TRUNCATE project_balances",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await gateway.execute(sql)


async def test_a_service_writes_only_its_own_projection_checkpoints(login: Login) -> None:
    billing, gateway = await login("billing"), await login("gateway")
    # Readable (a gateway waits on the ledger's checkpoint), not writable.
    names = {r["name"] for r in await billing.fetch("SELECT name FROM projection_checkpoints")}
    assert names == {p.name for p in GATEWAY_PROJECTIONS} | {"ledger"}
    assert await billing.execute("UPDATE projection_checkpoints SET last_seq = 1000000000") == (
        "UPDATE 1"  # its own row, the ledger's, and no other
    )
    assert (
        await gateway.fetchval("SELECT last_seq FROM projection_checkpoints WHERE name = 'keys'")
        == 0
    )
    assert await billing.execute("DELETE FROM projection_checkpoints WHERE name = 'jobs'") == (
        "DELETE 0"
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await billing.execute(
            "INSERT INTO projection_checkpoints (name, version, last_seq) VALUES ('x', 1, 0)"
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        # Taking over the gateway's row through the upsert the projector itself uses.
        await billing.execute(
            "INSERT INTO projection_checkpoints (name, version, last_seq) VALUES ('keys', 1, 0) "
            "ON CONFLICT (name) DO UPDATE SET last_seq = 999"
        )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await billing.execute(
            "INSERT INTO projection_quarantine (projection, stream_seq, subject, reason, "
            "raw_excerpt, raw_size) VALUES ('jobs', 1, 'ev.p.job.j', 'x', '', 0)"
        )


async def test_service_roles_hold_no_power_beyond_their_tables(login: Login) -> None:
    for service in DB_ROLES:
        conn = await login(service)
        row = await conn.fetchrow(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication "
            "FROM pg_roles WHERE rolname = current_user"
        )
        assert row is not None
        assert not any(row.values()), (service, dict(row))
        for sql in ("CREATE ROLE evil LOGIN SUPERUSER", "CREATE DATABASE evil"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql)
        with pytest.raises(asyncpg.PostgresError):
            await conn.execute("SET ROLE postgres")
        assert await conn.fetchval("SHOW search_path") == "public"


async def test_tcp_logins_need_a_password(pg_server: PostgresServer, login: Login) -> None:
    # ``login`` provisioned the roles; the right password is not enough for another role.
    for user in ("postgres", *(r.role for r in DB_ROLES.values())):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://{user}@127.0.0.1:{pg_server.port}/postgres")
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://{user}:wrong@127.0.0.1:{pg_server.port}/postgres")


async def test_the_kubernetes_roles_script_makes_the_same_roles(
    pg_server: PostgresServer,
) -> None:
    # deploy/k8s/postgres/roles.sql, run by psql the way the Postgres pod runs it.
    name = f"k8s_{secrets.token_hex(4)}"
    dsn = pg_server.create_database(name)
    script = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "postgres" / "roles.sql"
    sql = script.read_text().replace('"puras"', f'"{name}"')
    passwords = {svc: secrets.token_hex(16) for svc in DB_ROLES}
    args = [str(postgres_bin_dir() / "psql"), "-h", str(pg_server.socket_dir)]
    args += ["-p", str(pg_server.port), "-U", "postgres", "-d", name, "-q"]
    for svc, pw in passwords.items():
        args += ["--set", f"{svc}_password={pw}"]
    subprocess.run(args, input=sql.encode(), check=True, capture_output=True)
    billing = await asyncpg.connect(role_url(dsn, "puras_billing"), password=passwords["billing"])
    try:
        await ensure_projection_schema(billing, LedgerProjection(), "public")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await billing.execute("CREATE ROLE evil")
    finally:
        await billing.close()


async def test_a_service_connects_with_its_settings_password(database_url: str) -> None:
    # The password travels apart from the URL (never in a logged URL) and may hold any
    # character.
    password = "p@ss:w/rd%?#" + secrets.token_hex(8)
    await provision(
        database_url,
        database_of(database_url),
        {"gateway": "x" * 16, "billing": password, "drive": "y" * 16},
    )
    settings = BillingSettings(
        env="dev",
        database_url=role_url(database_url, "puras_billing"),
        database_password=SecretStr(password),
    )
    assert password not in settings.database_url
    conn = await asyncpg.connect(settings.database_dsn())
    try:
        assert await conn.fetchval("SELECT current_user") == "puras_billing"
    finally:
        await conn.close()


async def test_a_service_cannot_switch_off_the_shared_tables_guards(login: Login) -> None:
    # The roles co-own the shared tables (the projection library's DDL needs an owner);
    # owning must not let one of them undo the row-level security that separates them.
    billing = await login("billing")
    for sql in (
        "ALTER TABLE projection_checkpoints DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE projection_checkpoints NO FORCE ROW LEVEL SECURITY",
        "ALTER TABLE projection_quarantine OWNER TO puras_billing",
        "DROP POLICY puras_gateway_rows ON projection_checkpoints",
        "CREATE POLICY anything ON projection_checkpoints FOR ALL USING (true)",
        "ALTER POLICY puras_billing_rows ON projection_checkpoints USING (true)",
        "DROP TRIGGER puras_refuse_truncate ON projection_checkpoints",
        "ALTER TABLE projection_checkpoints DISABLE TRIGGER ALL",
        "TRUNCATE projection_checkpoints",
        "DROP TABLE projection_quarantine",
    ):
        with pytest.raises(asyncpg.RaiseError, match="only the database owner"):
            await billing.execute(sql)
    rows = len(GATEWAY_PROJECTIONS) + 1  # and the ledger's
    assert await billing.fetchval("SELECT count(*) FROM projection_checkpoints") == rows
    # What the projector itself runs at every start still works.
    await ensure_projection_schema(billing, LedgerProjection(), "public")
