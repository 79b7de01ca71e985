"""Postgres connections: asyncpg with JSON columns encoded by msgspec."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec

__all__ = ["connect", "create_pool", "init_connection", "quote_ident"]

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
