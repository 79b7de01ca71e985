"""Postgres connections (asyncpg with JSON columns encoded by msgspec), and which role
each service logs in as (:data:`DB_ROLES`).

Each service with tables has a login role of its own; it owns its tables (its projections
create them at start) and may not read or write another service's, except the reads
listed in :attr:`DbRole.reads`. The projection library's bookkeeping tables
(``projection_checkpoints``, ``projection_quarantine``) are shared: they belong to the
group role :data:`PROJECTOR_GROUP` (the library's idempotent DDL needs an owner), and
row-level security limits each role to the rows of its own projections. The scheduler
and the runner have no role: they never reach Postgres. The roles are made by
``puras_cli.infra.pg_roles`` (dev stack) and by the Kubernetes Postgres's init script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec

__all__ = [
    "DB_ROLES",
    "PROJECTOR_GROUP",
    "SHARED_TABLES",
    "DbRole",
    "connect",
    "create_pool",
    "init_connection",
    "quote_ident",
]


@dataclass(frozen=True)
class DbRole:
    """The Postgres role of one service and what it owns."""

    service: str
    role: str
    projections: tuple[str, ...]
    """Projections it runs: its rows of the shared bookkeeping tables."""
    tables: tuple[str, ...]
    """Tables it creates and owns (in schema ``public``)."""
    reads: tuple[str, ...] = ()
    """Services whose tables it may SELECT (never write)."""


DB_ROLES: dict[str, DbRole] = {
    r.service: r
    for r in (
        DbRole(
            service="gateway",
            role="puras_gateway",
            projections=("jobs", "deployments", "keys", "feedback", "secrets"),
            tables=(
                "jobs",
                "job_events",
                "deployments",
                "projects",
                "api_keys",
                "api_key_usage",
                "job_feedback",
                # Project secrets, sealed (X1): only the gateway's role reads them.
                "secrets",
            ),
            # The balance it shows after a grant and in the API is the ledger's.
            reads=("billing",),
        ),
        DbRole(
            service="billing",
            role="puras_billing",
            projections=("ledger",),
            tables=("ledger_entries", "project_balances", "usage_rows", "job_costs"),
        ),
        DbRole(
            service="drive",
            role="puras_drive",
            projections=("drive",),
            tables=("drive_files",),
        ),
    )
}
"""Services with Postgres tables, by service name."""

PROJECTOR_GROUP = "puras_projector"
"""Group role (no login) owning the shared projection tables; every service role is in it."""

SHARED_TABLES: dict[str, str] = {
    "projection_checkpoints": "name",
    "projection_quarantine": "projection",
}
"""Shared bookkeeping table -> its column naming the projection a row belongs to."""

_enc = msgspec.json.Encoder()


def _encode_json(value: Any) -> str:
    return _enc.encode(value).decode()


async def init_connection(conn: asyncpg.Connection, *, search_path: str | None = None) -> None:
    """Install the JSON codecs (and a search path) on a new connection."""
    for typ in ("jsonb", "json"):
        await conn.set_type_codec(
            typ, encoder=_encode_json, decoder=msgspec.json.decode, schema="pg_catalog"
        )
    if search_path:
        await conn.execute(f"SET search_path TO {quote_ident(search_path)}")


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, search_path: str | None = None
) -> asyncpg.Pool:
    """A pool on ``dsn`` (which may carry a password: never log it)."""

    async def _init(conn: asyncpg.Connection) -> None:
        await init_connection(conn, search_path=search_path)

    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init, command_timeout=60
    )
    assert pool is not None
    return pool


async def connect(dsn: str, *, search_path: str | None = None) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn)
    await init_connection(conn, search_path=search_path)
    return conn


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (schema and table names are ours, but quote anyway)."""
    return '"' + name.replace('"', '""') + '"'
