"""Feedback on jobs (J9) in Postgres: its projection of the log, and its queries.

One row per ``(job, end_user_id)``: the latest ``feedback.given`` of the pair, with the
time of the first one. Rows derive from events only, so a rebuild equals the live table.
"""

from __future__ import annotations

from typing import Any, ClassVar

import asyncpg

from puras_common.events.subjects import AGG_FEEDBACK, aggregate_filter
from puras_common.events.types import JobFeedbackGiven
from puras_common.projection.base import Projection, RecordedEvent

__all__ = ["FEEDBACK_COLUMNS", "FeedbackProjection", "FeedbackReads"]

FEEDBACK_COLUMNS = "job_id, end_user_id, rating, comment, created_at, updated_at"
"""What the API shows of a row (the project and the log position stay inside)."""


class FeedbackProjection(Projection):
    """``job_feedback``: every job's feedback, one row per end user."""

    name: ClassVar[str] = "feedback"
    version: ClassVar[int] = 1
    filter_subjects: ClassVar[list[str]] = [aggregate_filter(AGG_FEEDBACK)]
    tables: ClassVar[list[str]] = ["job_feedback"]
    compare_order: ClassVar[dict[str, str]] = {"job_feedback": "job_id, end_user_id"}
    ddl: ClassVar[str] = """
    CREATE TABLE IF NOT EXISTS job_feedback (
        job_id text NOT NULL,
        end_user_id text NOT NULL,
        project_id text NOT NULL,
        rating smallint NOT NULL,
        comment text NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        seq bigint NOT NULL,
        PRIMARY KEY (job_id, end_user_id)
    );
    CREATE INDEX IF NOT EXISTS job_feedback_newest
        ON job_feedback (project_id, job_id, updated_at DESC, seq DESC);
    """

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        rows: list[tuple[Any, ...]] = []
        for rec in events:
            ev, env = rec.event, rec.envelope
            if isinstance(ev, JobFeedbackGiven):
                rows.append(
                    (
                        env.aggregate_id,
                        ev.end_user_id,
                        env.project_id,
                        ev.rating,
                        ev.comment,
                        env.at,
                        rec.seq,
                    )
                )
        if rows:
            # In log order, one statement per event: a batch may change one pair twice.
            # ``seq`` guards a replayed batch (an older event never overwrites a newer).
            await conn.executemany(
                """
                INSERT INTO job_feedback (job_id, end_user_id, project_id, rating, comment,
                    created_at, updated_at, seq)
                VALUES ($1, $2, $3, $4, $5, $6, $6, $7)
                ON CONFLICT (job_id, end_user_id) DO UPDATE SET
                    rating = EXCLUDED.rating, comment = EXCLUDED.comment,
                    updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq
                WHERE job_feedback.seq < EXCLUDED.seq
                    AND job_feedback.project_id = EXCLUDED.project_id
                """,
                rows,
            )


class FeedbackReads:
    """Queries on ``job_feedback``, every one scoped by the caller's project."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list_feedback(self, project_id: str, job_id: str) -> list[dict[str, Any]]:
        """The job's rows, newest first."""
        try:
            rows = await self._pool.fetch(
                f"SELECT {FEEDBACK_COLUMNS} FROM job_feedback "  # noqa: S608
                "WHERE project_id = $1 AND job_id = $2 "
                "ORDER BY updated_at DESC, seq DESC",
                project_id,
                job_id,
            )
        except asyncpg.UndefinedTableError:
            return []  # a gateway not running the projectors, before any replica made it
        return [dict(r) for r in rows]

    async def get_feedback(
        self, project_id: str, job_id: str, end_user_id: str
    ) -> dict[str, Any] | None:
        try:
            row = await self._pool.fetchrow(
                f"SELECT {FEEDBACK_COLUMNS} FROM job_feedback "  # noqa: S608
                "WHERE project_id = $1 AND job_id = $2 AND end_user_id = $3",
                project_id,
                job_id,
                end_user_id,
            )
        except asyncpg.UndefinedTableError:
            return None
        return dict(row) if row is not None else None
