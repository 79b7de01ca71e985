"""Poison events: what a projection cannot decode or apply is quarantined, not fatal.

An event whose *own content* cannot be decoded (not JSON, not an envelope, a known type
with a wrong field) or applied (Postgres refuses a value it carries: a NUL character, an
invalid byte sequence, a value too long or out of range, a constraint it violates) is
recorded in ``projection_quarantine`` in the transaction that moves the checkpoint past
it, logged at error level, and the projection goes on with every other event.

A *transient* failure (Postgres down, connection lost, a serialization failure, the
checkpoint moved) is never quarantined: the batch is rolled back and redelivered.
:func:`poison_reason` is where the line is drawn.

An event of a type this build does not know is not poison: projections skip it by
design (``decode_event`` returns ``None``, an older binary reading a newer log).

Operators list, inspect, retry (re-apply through the current code) and resolve
(accept as skipped) quarantined events with ``puras admin quarantine``; an unresolved
entry keeps its service's ``/readyz`` at ``"status": "degraded"``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from puras_common.bus.follow import RawEvent
from puras_common.events.base import DecodeError, Envelope, decode_envelope, decode_event
from puras_common.projection.base import RecordedEvent

__all__ = [
    "QUARANTINE_CHANNEL",
    "QUARANTINE_DDL",
    "QUARANTINE_TABLE",
    "PoisonEvent",
    "QuarantineEntry",
    "decode_recorded",
    "ensure_quarantine_table",
    "excerpt",
    "get_entry",
    "list_entries",
    "open_counts",
    "poison_reason",
    "record",
    "resolve_entry",
    "sanitize",
]

QUARANTINE_TABLE = "projection_quarantine"
QUARANTINE_CHANNEL = "puras_quarantine"
"""``NOTIFY puras_quarantine, '<schema>.<projection>'`` whenever entries change."""

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS projection_quarantine (
    projection text NOT NULL,
    stream_seq bigint NOT NULL,
    subject text NOT NULL,
    event_type text,
    event_id text,
    reason text NOT NULL,
    raw_excerpt text NOT NULL,
    raw_size integer NOT NULL,
    first_seen timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolution text,
    PRIMARY KEY (projection, stream_seq)
);
CREATE INDEX IF NOT EXISTS projection_quarantine_open
    ON projection_quarantine (projection) WHERE resolved_at IS NULL;
"""

REASON_MAX = 2000
EXCERPT_MAX = 2000


class PoisonEvent(Exception):
    """One message of the log that cannot be decoded into an event."""

    def __init__(self, reason: str, envelope: Envelope | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.envelope = envelope


def decode_recorded(raw: RawEvent) -> RecordedEvent:
    """The event of ``raw``; :class:`PoisonEvent` if its bytes are not one.

    A type this build does not know decodes to ``event=None`` (skipped, not poison).
    """
    try:
        env = decode_envelope(raw.data)
    except DecodeError as exc:
        raise PoisonEvent(str(exc)) from exc
    try:
        event = decode_event(env)
    except DecodeError as exc:
        raise PoisonEvent(str(exc), env) from exc
    return RecordedEvent(seq=raw.seq, subject=raw.subject, envelope=env, event=event)


_POISON_SQLSTATE_CLASSES = ("22", "23")
"""Data exceptions (bad value: NUL, encoding, too long, out of range, bad format) and
integrity constraint violations: both are about the values the event carried."""

_POISON_PY = (
    DecodeError,
    msgspec.DecodeError,
    msgspec.ValidationError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    ArithmeticError,
)


def poison_reason(exc: BaseException) -> str | None:
    """Why ``exc`` (raised applying one event) is the event's own fault; ``None`` if it
    is not (a transient or infrastructure failure: retry, never quarantine)."""
    if isinstance(exc, asyncpg.PostgresError):
        code = str(getattr(exc, "sqlstate", "") or "")
        if code[:2] in _POISON_SQLSTATE_CLASSES:
            return sanitize(f"{type(exc).__name__} ({code}): {exc}", REASON_MAX)
        return None
    if isinstance(exc, asyncpg.InterfaceError):
        # The client refusing to encode an argument (a value of the wrong type or out of
        # range) is a ValueError too; a closed connection or a protocol error is not.
        if isinstance(exc, ValueError):
            return sanitize(f"{type(exc).__name__}: {exc}", REASON_MAX)
        return None
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return None
    if isinstance(exc, _POISON_PY):
        return sanitize(f"{type(exc).__name__}: {exc}", REASON_MAX)
    return None


def sanitize(text: str, limit: int) -> str:
    """Text Postgres can store: NUL and lone surrogates escaped, at most ``limit`` chars."""
    out = text.replace("\x00", "\\u0000")
    out = out.encode("utf-8", "backslashreplace").decode("utf-8")
    return out if len(out) <= limit else out[: limit - 1] + "…"


def excerpt(data: bytes, limit: int = EXCERPT_MAX) -> str:
    """The start of a message, readable and storable whatever its bytes are."""
    return sanitize(data[: limit * 4].decode("utf-8", "backslashreplace"), limit)


def ddl_lock_key(schema: str) -> int:
    """Advisory lock serializing set-ups of the tables every projection of ``schema``
    shares (checkpoints, quarantine): concurrent ``CREATE ... IF NOT EXISTS`` collide."""
    digest = hashlib.sha256(f"puras-projection:{schema}:*ddl*".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def ensure_quarantine_table(conn: asyncpg.Connection, schema: str | None = None) -> None:
    """Create the table in the connection's current schema (idempotent). With
    ``schema`` (that current schema), under :func:`ddl_lock_key`, in a transaction."""
    if schema is None:
        await conn.execute(QUARANTINE_DDL)
        return
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ddl_lock_key(schema))
        await conn.execute(QUARANTINE_DDL)


async def record(
    conn: asyncpg.Connection,
    projection: str,
    raw: RawEvent,
    envelope: Envelope | None,
    reason: str,
) -> None:
    """Quarantine one event (unqualified table: the connection's ``search_path``).

    Meeting the same event again (a replay) keeps the first sighting and an operator's
    resolution; the reason is the latest one.
    """
    await conn.execute(
        "INSERT INTO projection_quarantine (projection, stream_seq, subject, event_type, "
        "event_id, reason, raw_excerpt, raw_size) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
        "ON CONFLICT (projection, stream_seq) DO UPDATE SET reason = EXCLUDED.reason",
        projection,
        raw.seq,
        sanitize(raw.subject, 500),
        sanitize(envelope.type, 200) if envelope is not None else None,
        sanitize(envelope.id, 500) if envelope is not None else None,
        sanitize(reason, REASON_MAX),
        excerpt(raw.data),
        len(raw.data),
    )


@dataclass(frozen=True)
class QuarantineEntry:
    projection: str
    stream_seq: int
    subject: str
    event_type: str | None
    event_id: str | None
    reason: str
    raw_excerpt: str
    raw_size: int
    first_seen: datetime
    resolved_at: datetime | None
    resolution: str | None

    def summary(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "seq": self.stream_seq,
            "subject": self.subject,
            "event_type": self.event_type,
            "reason": self.reason if len(self.reason) <= 200 else self.reason[:199] + "…",
            "first_seen": self.first_seen.isoformat(),
            "resolved": self.resolved_at is not None,
        }

    def detail(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "seq": self.stream_seq,
            "subject": self.subject,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "reason": self.reason,
            "raw_size": self.raw_size,
            "raw_excerpt": self.raw_excerpt,
            "first_seen": self.first_seen.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "resolution": self.resolution,
        }


_COLS = (
    "projection, stream_seq, subject, event_type, event_id, reason, raw_excerpt, raw_size, "
    "first_seen, resolved_at, resolution"
)


def _entry(row: asyncpg.Record) -> QuarantineEntry:
    return QuarantineEntry(**dict(row))


async def list_entries(
    conn: asyncpg.Connection, *, include_resolved: bool = False, projection: str | None = None
) -> list[QuarantineEntry]:
    try:
        rows = await conn.fetch(
            f"SELECT {_COLS} FROM projection_quarantine "  # noqa: S608
            "WHERE ($1 OR resolved_at IS NULL) AND ($2::text IS NULL OR projection = $2) "
            "ORDER BY projection, stream_seq",
            include_resolved,
            projection,
        )
    except asyncpg.UndefinedTableError:
        return []
    return [_entry(r) for r in rows]


async def get_entry(conn: asyncpg.Connection, projection: str, seq: int) -> QuarantineEntry | None:
    try:
        row = await conn.fetchrow(
            f"SELECT {_COLS} FROM projection_quarantine "  # noqa: S608
            "WHERE projection = $1 AND stream_seq = $2",
            projection,
            seq,
        )
    except asyncpg.UndefinedTableError:
        return None
    return _entry(row) if row is not None else None


async def open_counts(conn: asyncpg.Connection) -> dict[str, int]:
    """Unresolved entries per projection (empty when there is no table yet)."""
    try:
        rows = await conn.fetch(
            "SELECT projection, count(*) AS n FROM projection_quarantine "
            "WHERE resolved_at IS NULL GROUP BY projection"
        )
    except asyncpg.UndefinedTableError:
        return {}
    return {str(r["projection"]): int(r["n"]) for r in rows}


async def notify(conn: asyncpg.Connection, schema: str, projection: str) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", QUARANTINE_CHANNEL, f"{schema}.{projection}")


async def resolve_entry(
    conn: asyncpg.Connection, projection: str, seq: int, note: str, *, schema: str = "public"
) -> QuarantineEntry | None:
    """Mark an entry accepted as skipped by the operator; ``None`` if there is none."""
    async with conn.transaction():
        row = await conn.fetchrow(
            "UPDATE projection_quarantine SET resolved_at = now(), resolution = $3 "  # noqa: S608
            f"WHERE projection = $1 AND stream_seq = $2 RETURNING {_COLS}",
            projection,
            seq,
            sanitize(note, REASON_MAX),
        )
        if row is not None:
            await notify(conn, schema, projection)
    return _entry(row) if row is not None else None
