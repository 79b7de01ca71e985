"""Queries on the read views in Postgres. Every query is scoped by the caller's project."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from puras_common.events.types import JobRecord
from puras_gateway.domain.requests import Cursor, ListParams
from puras_gateway.domain.usage_query import GroupBy, UsageQuery

__all__ = ["ReadModels"]

_JOB_COLS = (
    "id, project_id, skill, status, inputs, result, error, cost_micros, deployment_id, "
    "attempts, created_at, started_at, finished_at, held_reason"
)


_USAGE_KEY: dict[GroupBy, str] = {
    # A day is a UTC day, whatever the server's or the session's time zone.
    "day": "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "skill": "skill",
    "model": "model",
}


def _job(row: asyncpg.Record) -> JobRecord:
    return msgspec.convert(dict(row), JobRecord)


class ReadModels:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get_job(self, project_id: str, job_id: str) -> JobRecord | None:
        found = await self.get_job_at(project_id, job_id)
        return found[0] if found else None

    async def get_job_at(self, project_id: str, job_id: str) -> tuple[JobRecord, int, int] | None:
        """The job row with the stream sequence and event count it reflects."""
        row = await self._pool.fetchrow(
            f"SELECT {_JOB_COLS}, last_seq, event_count FROM jobs "  # noqa: S608
            "WHERE id = $1 AND project_id = $2",
            job_id,
            project_id,
        )
        if row is None:
            return None
        d = dict(row)
        last_seq, count = int(d.pop("last_seq")), int(d.pop("event_count"))
        return msgspec.convert(d, JobRecord), last_seq, count

    async def list_jobs(
        self, project_id: str, params: ListParams
    ) -> tuple[list[JobRecord], Cursor | None]:
        args: list[Any] = [project_id]
        where = ["project_id = $1"]
        if params.status:
            args.append(params.status)
            where.append(f"status = ${len(args)}")
        if params.skill:
            args.append(params.skill)
            where.append(f"skill = ${len(args)}")
        if params.cursor:
            args.extend([params.cursor.created_at, params.cursor.id])
            where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
        args.append(params.limit + 1)
        # Only constant column lists and numbered placeholders are spliced in; values bind.
        rows = await self._pool.fetch(
            f"SELECT {_JOB_COLS} FROM jobs WHERE {' AND '.join(where)} "  # noqa: S608
            f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}",
            *args,
        )
        jobs = [_job(r) for r in rows[: params.limit]]
        nxt = None
        if len(rows) > params.limit:
            last = jobs[-1]
            nxt = Cursor(created_at=last.created_at, id=last.id)
        return jobs, nxt

    async def job_events(self, project_id: str, job_id: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT idx AS id, type, payload, at FROM job_events "
            "WHERE job_id = $1 AND project_id = $2 ORDER BY idx",
            job_id,
            project_id,
        )
        return [dict(r) for r in rows]

    async def list_deployments(self, project_id: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT id, notes, created_at, active, activated_at, bundle_size, "
            "requirements_sha256, skills, status, error FROM deployments WHERE project_id = $1 "
            "ORDER BY created_at DESC, id DESC",
            project_id,
        )
        return [dict(r) for r in rows]

    async def list_keys(self, project_id: str) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT k.prefix, k.created_at, u.last_used_at FROM api_keys k "
            "LEFT JOIN api_key_usage u ON u.prefix = k.prefix "
            "WHERE k.project_id = $1 AND k.revoked_at IS NULL ORDER BY k.created_at, k.prefix",
            project_id,
        )
        return [dict(r) for r in rows]

    async def list_projects(self) -> list[dict[str, Any]]:
        """Every project, newest first, with its count of active keys and its balance
        (the operator's view: not scoped by a project)."""
        rows = await self._pool.fetch(
            "SELECT p.id, p.name, p.created_at, "
            "count(k.prefix) FILTER (WHERE k.revoked_at IS NULL)::int AS active_keys "
            "FROM projects p LEFT JOIN api_keys k ON k.project_id = p.id "
            "GROUP BY p.id, p.name, p.created_at ORDER BY p.created_at DESC, p.id DESC"
        )
        try:
            balances = {
                r["project_id"]: int(r["credit_balance_micros"])
                for r in await self._pool.fetch(
                    "SELECT project_id, credit_balance_micros FROM project_balances"
                )
            }
        except asyncpg.UndefinedTableError:
            balances = {}  # billing has not created its ledger yet: nothing was granted
        return [{**dict(r), "credit_balance_micros": balances.get(r["id"], 0)} for r in rows]

    async def key_spend(self, project_id: str, prefix: str, *, since: datetime) -> int:
        try:
            v = await self._pool.fetchval(
                "SELECT coalesce(sum(billed_micros), 0) FROM usage_rows "
                "WHERE project_id = $1 AND key_prefix = $2 AND at >= $3",
                project_id,
                prefix,
                since,
            )
        except asyncpg.UndefinedTableError:
            return 0  # billing has not created its tables yet: nothing was charged
        return int(v or 0)

    async def balance(self, project_id: str) -> int:
        try:
            v = await self._pool.fetchval(
                "SELECT credit_balance_micros FROM project_balances WHERE project_id = $1",
                project_id,
            )
        except asyncpg.UndefinedTableError:
            # The billing service has not created its ledger yet: nothing was granted.
            return 0
        return int(v or 0)

    async def usage(self, project_id: str, q: UsageQuery) -> list[dict[str, Any]]:
        """Z2: the project's billed calls in ``[q.start, q.end)`` summed per key (a UTC
        day, a skill or a model slug), ordered by key; keys with no call are not listed."""
        key = _USAGE_KEY[q.group_by]
        # The sums are cast back to bigint: SUM(bigint) is numeric, which would reach
        # the client as a decimal string instead of an integer of micros. Keys are
        # ordered by code point (COLLATE "C"), not by the database's locale.
        sql = (
            f'SELECT {key} COLLATE "C" AS key, '  # noqa: S608
            "SUM(billed_micros)::bigint AS billed_micros, "
            "COUNT(*)::bigint AS calls, SUM(input_tokens)::bigint AS input_tokens, "
            "SUM(output_tokens)::bigint AS output_tokens, "
            "SUM(cache_read_tokens)::bigint AS cache_read_tokens, "
            "SUM(cache_write_tokens)::bigint AS cache_write_tokens "
            "FROM usage_rows WHERE project_id = $1 AND at >= $2 AND at < $3 "
            "GROUP BY 1 ORDER BY 1"
        )
        try:
            rows = await self._pool.fetch(sql, project_id, q.start, q.end)
        except asyncpg.UndefinedTableError:
            # The billing service has not created its tables yet: nothing was billed.
            return []
        return [dict(r) for r in rows]
