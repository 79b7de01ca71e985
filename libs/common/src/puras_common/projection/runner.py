"""Runs a projection: one active replica, batches applied with their checkpoint.

* Single active writer: a session advisory lock per (schema, projection). Other replicas
  block on it and take over when the holder dies (its session ends, the lock is freed).
* Tracking: ``projection_checkpoints(name, version, last_seq)`` in the projection's
  schema, advanced in the same transaction as the rows (compare-and-set on the previous
  value, so a concurrent reset is noticed instead of overwritten).
* Reading: an ordered consumer from ``last_seq + 1``; a batch is whatever is ready,
  optionally after a short ``linger`` once its first event arrived (a live log delivers
  a job's events milliseconds apart: waiting that long folds them into one transaction
  and one row write instead of one each).
* Version change: tables dropped and recreated, checkpoint 0, replay from the start.
* Poison events (quarantine.py): an event that cannot be decoded, or that Postgres
  refuses because of what it carries, is recorded in ``projection_quarantine`` in the
  transaction that moves the checkpoint past it and logged at error level; the other
  events of its batch are applied (a batch that fails is applied again event by event,
  one savepoint each, so a bad event never takes its neighbours with it).
* Any other failure (Postgres unreachable, connection lost, checkpoint moved) is not the
  event's fault: the batch is rolled back and ``run`` raises, so its caller retries and
  the events are redelivered from the checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from nats.js import JetStreamContext

from puras_common.bus.follow import EventFollower, RawEvent
from puras_common.db import init_connection, quote_ident
from puras_common.events.base import Envelope
from puras_common.events.subjects import EVENTS_STREAM
from puras_common.logging import get_logger
from puras_common.projection import quarantine
from puras_common.projection.base import Projection, RecordedEvent
from puras_common.projection.quarantine import PoisonEvent, decode_recorded, poison_reason
from puras_common.sequence import SequenceBarrier

__all__ = [
    "CheckpointMoved",
    "ProjectorRunner",
    "RetryOutcome",
    "decode_batch",
    "ensure_projection_schema",
    "retry_quarantined",
]

log = get_logger(__name__)

NOTIFY_CHANNEL = "puras_projection"

LINGER_POLL_S = 0.0005
"""After a linger, how long to wait for a first further event (none may have come)."""

CHECKPOINT_DDL = """
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name text PRIMARY KEY,
    version integer NOT NULL,
    last_seq bigint NOT NULL
)
"""


class CheckpointMoved(RuntimeError):
    """The checkpoint is not where this runner left it (reset or another writer)."""


def _lock_key(schema: str, name: str) -> int:
    digest = hashlib.sha256(f"puras-projection:{schema}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


OnPoison = Callable[[RawEvent, Envelope | None, str], None]


def decode_batch(raw: list[RawEvent], on_poison: OnPoison | None = None) -> list[RecordedEvent]:
    """The events of ``raw``, in order; a message that is not one is left out, logged
    at error level and handed to ``on_poison(raw, envelope or None, reason)``."""
    out: list[RecordedEvent] = []
    for r in raw:
        try:
            out.append(decode_recorded(r))
        except PoisonEvent as exc:
            log.error(
                "undecodable event skipped",
                seq=r.seq,
                subject=r.subject,
                event_type=exc.envelope.type if exc.envelope else None,
                reason=exc.reason,
            )
            if on_poison is not None:
                on_poison(r, exc.envelope, exc.reason)
    return out


async def ensure_projection_schema(conn: asyncpg.Connection, proj: Projection, schema: str) -> int:
    """Create the projection's tables if needed (rebuilding on a version change).

    Returns the checkpoint to resume after.
    """
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
    await conn.execute(f"SET search_path TO {quote_ident(schema)}")
    async with conn.transaction():
        # The checkpoint and quarantine tables are shared by every projection of the
        # schema: one set-up at a time (concurrent CREATE ... IF NOT EXISTS can collide,
        # and CREATE INDEX's share lock deadlocks another set-up's DELETE).
        await conn.execute("SELECT pg_advisory_xact_lock($1)", quarantine.ddl_lock_key(schema))
        await conn.execute(CHECKPOINT_DDL)
        await quarantine.ensure_quarantine_table(conn)
        row = await conn.fetchrow(
            "SELECT version, last_seq FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
            proj.name,
        )
        if row is not None and row["version"] == proj.version:
            await conn.execute(proj.ddl)  # idempotent (IF NOT EXISTS): heals a dropped index
            return int(row["last_seq"])
        if row is not None:
            log.warning(
                "projection version changed; rebuilding from the log",
                projection=proj.name,
                old=row["version"],
                new=proj.version,
            )
        for table in reversed(proj.tables):
            await conn.execute(f"DROP TABLE IF EXISTS {quote_ident(table)} CASCADE")
        # The replay quarantines again whatever still fails; what the new version applies
        # must not stay listed. Operators' resolutions are kept.
        await conn.execute(
            "DELETE FROM projection_quarantine WHERE projection = $1 AND resolved_at IS NULL",
            proj.name,
        )
        await conn.execute(proj.ddl)
        await conn.execute(
            "INSERT INTO projection_checkpoints(name, version, last_seq) VALUES ($1, $2, 0) "
            "ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, last_seq = 0",
            proj.name,
            proj.version,
        )
        return 0


class ProjectorRunner:
    """Keeps one projection current in one schema."""

    def __init__(
        self,
        dsn: str,
        js: JetStreamContext,
        projection: Projection,
        *,
        schema: str = "public",
        batch_size: int = 500,
        linger_s: float = 0.0,
        on_commit: Callable[[str, int], None] | None = None,
    ) -> None:
        self._dsn = dsn
        self._js = js
        self.projection = projection
        self.schema = schema
        self._batch = batch_size
        self._linger = linger_s
        self._on_commit = on_commit
        self._applied = SequenceBarrier()
        self.caught_up = asyncio.Event()
        self.standby = False
        """True while another replica holds the projection and this one waits to take over."""
        self._conn: asyncpg.Connection | None = None
        self._follower: EventFollower | None = None
        self.quarantined = 0
        """Unresolved quarantined events of this projection (in this schema)."""
        self.following = False
        """True while this runner is the active projector, following the log."""
        self._recount = False

    @property
    def last_seq(self) -> int:
        """Everything of our subjects up to this sequence is applied and committed."""
        return self._applied.seq

    @last_seq.setter
    def last_seq(self, seq: int) -> None:
        # May go down: a projection whose version changed starts again from 0.
        self._applied.reset(seq)

    async def run(self, stop: asyncio.Event | None = None, *, until_seq: int | None = None) -> None:
        """Apply events until ``stop`` is set (or, with ``until_seq``, until that sequence)."""
        conn = await asyncpg.connect(self._dsn)
        self._conn = conn
        try:
            await init_connection(conn)
            # No fsync wait per commit: rows and checkpoint commit together, so a crash
            # loses both for the last moments and they are applied again from the log.
            await conn.execute("SET synchronous_commit TO off")
            key = _lock_key(self.schema, self.projection.name)
            # Blocks while another replica is the active projector.
            self.standby = True
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            self.standby = False
            self.last_seq = await ensure_projection_schema(conn, self.projection, self.schema)
            # Operators resolve or retry entries from another process: count again then.
            await conn.add_listener(quarantine.QUARANTINE_CHANNEL, self._on_quarantine_notify)
            await self._count_quarantined(conn)
            await self._follow(conn, stop, until_seq)
        finally:
            if self._follower is not None:
                await self._follower.stop()
            with contextlib.suppress(Exception):
                await conn.close()

    async def _follow(
        self, conn: asyncpg.Connection, stop: asyncio.Event | None, until_seq: int | None
    ) -> None:
        # With until_seq (a rebuild catching up to a live checkpoint, which is always the
        # sequence of an event this projection applied, or 0), stop once it is applied.
        if until_seq is not None and self.last_seq >= until_seq:
            self.caught_up.set()
            return
        follower = EventFollower(
            self._js, self.projection.filter_subjects, start_seq=self.last_seq + 1
        )
        self._follower = follower
        await follower.start()
        if follower.initial_pending == 0:
            self.caught_up.set()
        self.following = True
        try:
            await self._follow_loop(conn, follower, stop, until_seq)
        finally:
            self.following = False

    async def _follow_loop(
        self,
        conn: asyncpg.Connection,
        follower: EventFollower,
        stop: asyncio.Event | None,
        until_seq: int | None,
    ) -> None:
        while stop is None or not stop.is_set():
            raw = await follower.next_batch(self._batch, timeout=0.5)
            if raw and self._linger > 0 and len(raw) < self._batch and raw[-1].pending == 0:
                # A live trickle, not a backlog (that comes in full batches at once):
                # let the events right behind this one join its transaction.
                await asyncio.sleep(self._linger)
                raw += await follower.next_batch(self._batch - len(raw), timeout=LINGER_POLL_S)
            if self._recount:
                await self._count_quarantined(conn)
            if until_seq is not None:
                raw = [r for r in raw if r.seq <= until_seq]
            if raw:
                await self._apply(conn, raw)
                if raw[-1].pending == 0:
                    self.caught_up.set()
            if until_seq is not None and self.last_seq >= until_seq:
                return

    def _on_quarantine_notify(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        if payload == f"{self.schema}.{self.projection.name}":
            self._recount = True

    async def _count_quarantined(self, conn: asyncpg.Connection) -> None:
        self._recount = False
        n = await conn.fetchval(
            "SELECT count(*) FROM projection_quarantine "
            "WHERE projection = $1 AND resolved_at IS NULL",
            self.projection.name,
        )
        self.quarantined = int(n or 0)

    async def _apply(self, conn: asyncpg.Connection, raw: list[RawEvent]) -> None:
        events: list[RecordedEvent] = []
        undecodable: list[tuple[RawEvent, Envelope | None, str]] = []
        for r in raw:
            try:
                events.append(decode_recorded(r))
            except PoisonEvent as exc:
                undecodable.append((r, exc.envelope, exc.reason))
        new_seq = raw[-1].seq
        # The common case, a batch that applies, in one transaction without savepoints
        # (each is a round trip). A batch that fails because of an event's content is
        # rolled back and applied again event by event, one savepoint each, so a bad
        # event never takes its neighbours with it.
        failed: BaseException | None = None
        try:
            async with conn.transaction():
                # The checkpoint first: its row lock serializes this batch with an
                # operator's `puras admin quarantine retry`, which takes the same lock.
                await self._cas(conn, new_seq)
                if events:
                    try:
                        await self.projection.apply(conn, events)
                    except Exception as exc:
                        if poison_reason(exc) is None:
                            raise  # not the events' fault: roll back, retry, redeliver
                        failed = exc
                        raise
                await self._record_poisoned(conn, undecodable)
            poisoned = undecodable
        except Exception as exc:
            if failed is None or exc is not failed:
                raise
            poisoned = await self._apply_one_by_one(conn, raw, events, undecodable, new_seq)
        for r, env, reason in sorted(poisoned, key=lambda p: p[0].seq):
            log.error(
                "event quarantined",
                projection=self.projection.name,
                schema=self.schema,
                seq=r.seq,
                subject=r.subject,
                event_type=env.type if env else None,
                event_id=env.id if env else None,
                reason=reason,
            )
        if poisoned:
            self.quarantined += len(poisoned)
            self._recount = True  # a replayed entry may have been there already
        await self._committed(new_seq)

    async def _apply_one_by_one(
        self,
        conn: asyncpg.Connection,
        raw: list[RawEvent],
        events: list[RecordedEvent],
        undecodable: list[tuple[RawEvent, Envelope | None, str]],
        new_seq: int,
    ) -> list[tuple[RawEvent, Envelope | None, str]]:
        by_seq = {r.seq: r for r in raw}
        poisoned = list(undecodable)
        async with conn.transaction():
            await self._cas(conn, new_seq)
            for rec in events:
                try:
                    async with conn.transaction():  # a savepoint
                        await self.projection.apply(conn, [rec])
                except Exception as one:
                    reason = poison_reason(one)
                    if reason is None:
                        raise
                    poisoned.append((by_seq[rec.seq], rec.envelope, reason))
            await self._record_poisoned(conn, poisoned)
        return poisoned

    async def _record_poisoned(
        self, conn: asyncpg.Connection, poisoned: list[tuple[RawEvent, Envelope | None, str]]
    ) -> None:
        for r, env, reason in poisoned:
            await quarantine.record(conn, self.projection.name, r, env, reason)
        if poisoned:
            await quarantine.notify(conn, self.schema, self.projection.name)

    async def _cas(self, conn: asyncpg.Connection, seq: int) -> None:
        # Moved and announced in one statement (one round trip): NOTIFY is delivered at
        # commit, and only if the compare-and-set matched.
        done = await conn.fetchrow(
            "WITH moved AS (UPDATE projection_checkpoints SET last_seq = $2 "
            "WHERE name = $1 AND last_seq = $3 RETURNING last_seq) "
            "SELECT pg_notify($4, $5) FROM moved",
            self.projection.name,
            seq,
            self.last_seq,
            NOTIFY_CHANNEL,
            f"{self.schema}.{self.projection.name}:{seq}",
        )
        if done is None:
            raise CheckpointMoved(
                f"checkpoint of {self.schema}.{self.projection.name} moved from {self.last_seq}"
            )

    async def _committed(self, seq: int) -> None:
        self.last_seq = seq
        if self._on_commit is not None:
            self._on_commit(self.projection.name, seq)

    async def sync(self, timeout: float) -> bool:
        """Wait (bounded) until every event of our subjects stored before this call is
        applied and committed: what a client has seen (a job that ended), a list shows.

        ``False`` when this runner is not the active projector (another replica is) or
        the bound passes first.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (follower := self._follower) is not None:
            try:
                delivered, pending = await follower.position()
            except Exception:
                return False
            left = deadline - loop.time()
            if left <= 0 or not await self.wait_for(delivered, left):
                return False
            if pending == 0:
                return True
        return False

    async def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait (bounded) until this runner has applied everything up to ``seq``."""
        return await self._applied.wait_for(seq, timeout)


@dataclass(frozen=True)
class RetryOutcome:
    applied: bool
    """The event was applied through the current code and left the quarantine."""
    reason: str | None = None
    """Why it still fails (``applied`` false)."""
    reapplied_after: int = 0
    """Later events of the same subject applied again after it (idempotently)."""


async def _later_on_subject(
    js: JetStreamContext, subject: str, after: int, until: int
) -> list[RawEvent]:
    if until <= after:
        return []
    follower = EventFollower(js, [subject], start_seq=after + 1)
    await follower.start()
    try:
        out: list[RawEvent] = []
        left = follower.initial_pending
        while left > 0:
            batch = await follower.next_batch(1000, timeout=10)
            if not batch:
                raise TimeoutError(f"the log did not deliver the events of {subject}")
            out += [r for r in batch if r.seq <= until]
            left = batch[-1].pending
            if batch[-1].seq >= until:
                break
        return out
    finally:
        await follower.stop()


async def retry_quarantined(
    dsn: str,
    js: JetStreamContext,
    projection: Projection,
    seq: int,
    *,
    schema: str = "public",
) -> RetryOutcome:
    """Apply the quarantined event ``seq`` through the current code, in the live tables.

    The events after it on the same subject (its aggregate) up to the checkpoint are
    applied again after it: they were applied without it, and projections are
    idempotent, so this only adds what they could not do then (e.g. a job's later events,
    skipped while its first one was missing). Runs under the checkpoint's row lock, so
    the live projector waits for it. On success the entry is deleted; when the event
    still fails, its reason is updated and the entry stays.
    """
    conn = await asyncpg.connect(dsn)
    try:
        await init_connection(conn)
        await conn.execute(f"SET search_path TO {quote_ident(schema)}")
        async with conn.transaction():
            checkpoint = await conn.fetchval(
                "SELECT last_seq FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
                projection.name,
            )
            entry = await conn.fetchrow(
                "SELECT subject FROM projection_quarantine "
                "WHERE projection = $1 AND stream_seq = $2 FOR UPDATE",
                projection.name,
                seq,
            )
            if entry is None or checkpoint is None:
                raise LookupError(f"no quarantined event {seq} of projection {projection.name!r}")
            msg = await js.get_msg(EVENTS_STREAM, seq)
            raw = RawEvent(seq=seq, subject=msg.subject or "", data=msg.data or b"", pending=0)
            # Later events quarantined themselves have their own entry (and retry).
            others = {
                int(r["stream_seq"])
                for r in await conn.fetch(
                    "SELECT stream_seq FROM projection_quarantine WHERE projection = $1",
                    projection.name,
                )
            }
            later = [
                r
                for r in await _later_on_subject(js, raw.subject, seq, int(checkpoint))
                if r.seq not in others
            ]
            reason: str | None = None
            try:
                events = [decode_recorded(raw)]
                for r in later:
                    with contextlib.suppress(PoisonEvent):
                        events.append(decode_recorded(r))
                async with conn.transaction():
                    await projection.apply(conn, events)
            except PoisonEvent as exc:
                reason = exc.reason
            except Exception as exc:
                reason = poison_reason(exc)
                if reason is None:
                    raise
            if reason is not None:
                await conn.execute(
                    "UPDATE projection_quarantine SET reason = $3 "
                    "WHERE projection = $1 AND stream_seq = $2",
                    projection.name,
                    seq,
                    quarantine.sanitize(reason, quarantine.REASON_MAX),
                )
                return RetryOutcome(applied=False, reason=reason)
            await conn.execute(
                "DELETE FROM projection_quarantine WHERE projection = $1 AND stream_seq = $2",
                projection.name,
                seq,
            )
            await quarantine.notify(conn, schema, projection.name)
        log.info("quarantined event applied on retry", projection=projection.name, seq=seq)
        return RetryOutcome(applied=True, reapplied_after=len(later))
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
