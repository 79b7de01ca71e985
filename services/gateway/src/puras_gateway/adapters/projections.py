"""The gateway's Postgres read views, as projections of the event log.

Rows derive from events only (never ``now()``), so ``puras admin rebuild`` can prove a
rebuild equals the live tables.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

import asyncpg
import msgspec

from puras_common.events.subjects import (
    AGG_DEPLOYMENTS,
    AGG_JOB,
    AGG_KEY,
    AGG_PROJECT,
    aggregate_filter,
)
from puras_common.events.types import (
    ApiKeyCreated,
    ApiKeyRevoked,
    DeploymentActivated,
    DeploymentBuildFailed,
    DeploymentBuilt,
    DeploymentCreated,
    DeploymentDeleted,
    JobRecord,
    ProjectCreated,
)
from puras_common.projection.base import Projection, RecordedEvent
from puras_common.views.jobs import apply_job_event, public_event_type, public_payload
from puras_gateway.adapters.feedback import FeedbackProjection
from puras_gateway.adapters.secrets_table import SecretsProjection

__all__ = ["GATEWAY_PROJECTIONS", "DeploymentsProjection", "JobsProjection", "KeysProjection"]


class JobsProjection(Projection):
    """``jobs`` (one row per job, the JobOut) and ``job_events`` (J5, numbered per job)."""

    name: ClassVar[str] = "jobs"
    # 2: terminal events became facts (v2). A replica still on version 1 during a rolling
    # upgrade skips them as unknown; the rebuild applies them.
    # 3: ``job.cost`` (a billed call) adds to the job's cost_micros, also after its end;
    # a build that did not know it counted the event without applying it.
    # 4: ``held_reason`` (Z8) is folded from ``job.queued``'s hold and ``job.released``.
    version: ClassVar[int] = 4
    filter_subjects: ClassVar[list[str]] = [aggregate_filter(AGG_JOB)]
    tables: ClassVar[list[str]] = ["jobs", "job_events"]
    compare_order: ClassVar[dict[str, str]] = {"jobs": "id", "job_events": "job_id, idx"}
    ddl: ClassVar[str] = """
    CREATE TABLE IF NOT EXISTS jobs (
        id text PRIMARY KEY,
        project_id text NOT NULL,
        skill text NOT NULL,
        status text NOT NULL,
        inputs jsonb NOT NULL,
        result jsonb,
        error text,
        cost_micros bigint NOT NULL DEFAULT 0,
        deployment_id text,
        attempts integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        held_reason text,
        event_count integer NOT NULL,
        last_seq bigint NOT NULL
    );
    CREATE INDEX IF NOT EXISTS jobs_by_project ON jobs (project_id, created_at DESC, id DESC);
    CREATE INDEX IF NOT EXISTS jobs_by_project_status
        ON jobs (project_id, status, created_at DESC, id DESC);
    CREATE TABLE IF NOT EXISTS job_events (
        job_id text NOT NULL,
        idx integer NOT NULL,
        project_id text NOT NULL,
        type text NOT NULL,
        payload jsonb NOT NULL,
        at timestamptz NOT NULL,
        seq bigint NOT NULL,
        PRIMARY KEY (job_id, idx)
    );
    """

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        by_job: OrderedDict[str, list[RecordedEvent]] = OrderedDict()
        for rec in events:
            by_job.setdefault(rec.envelope.aggregate_id, []).append(rec)
        rows = await conn.fetch(
            "SELECT id, project_id, skill, status, inputs, result, error, cost_micros, "
            "deployment_id, attempts, created_at, started_at, finished_at, held_reason, "
            "event_count, last_seq FROM jobs WHERE id = ANY($1::text[])",
            list(by_job),
        )
        current: dict[str, tuple[JobRecord | None, int, int]] = {}
        for r in rows:
            rec_dict = {k: v for k, v in r.items() if k not in ("event_count", "last_seq")}
            current[r["id"]] = (
                msgspec.convert(rec_dict, JobRecord),
                int(r["event_count"]),
                int(r["last_seq"]),
            )
        event_rows: list[tuple[Any, ...]] = []
        job_rows: list[tuple[Any, ...]] = []
        for job_id, recs in by_job.items():
            job, count, last_seq = current.get(job_id, (None, 0, 0))
            for rec in recs:
                if rec.seq <= last_seq:
                    continue  # already applied: a replayed batch changes nothing
                if job is None and rec.envelope.type != "job.queued":
                    # job.queued is always a job's first event (the scheduler writes it
                    # before anything else can); anything else here is not a job's.
                    continue
                count += 1
                last_seq = rec.seq
                job = apply_job_event(job, rec.envelope, rec.event)
                raw = None if rec.event is not None else msgspec.json.decode(rec.envelope.data)
                event_rows.append(
                    (
                        job_id,
                        count,
                        rec.envelope.project_id,
                        public_event_type(rec.envelope.type),
                        public_payload(rec.event, raw, job=job),
                        rec.envelope.at,
                        rec.seq,
                    )
                )
            if job is not None:
                job_rows.append(
                    (
                        job.id,
                        job.project_id,
                        job.skill,
                        job.status,
                        job.inputs,
                        job.result,
                        job.error,
                        job.cost_micros,
                        job.deployment_id,
                        job.attempts,
                        job.created_at,
                        job.started_at,
                        job.finished_at,
                        job.held_reason,
                        count,
                        last_seq,
                    )
                )
        if event_rows:
            await conn.executemany(
                "INSERT INTO job_events (job_id, idx, project_id, type, payload, at, seq) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                event_rows,
            )
        if job_rows:
            await conn.executemany(
                """
                INSERT INTO jobs (id, project_id, skill, status, inputs, result, error,
                    cost_micros, deployment_id, attempts, created_at, started_at, finished_at,
                    held_reason, event_count, last_seq)
                VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)
                ON CONFLICT (id) DO UPDATE SET
                    status = EXCLUDED.status, result = EXCLUDED.result, error = EXCLUDED.error,
                    cost_micros = EXCLUDED.cost_micros, deployment_id = EXCLUDED.deployment_id,
                    attempts = EXCLUDED.attempts, started_at = EXCLUDED.started_at,
                    finished_at = EXCLUDED.finished_at, held_reason = EXCLUDED.held_reason,
                    event_count = EXCLUDED.event_count,
                    last_seq = EXCLUDED.last_seq
                """,
                job_rows,
            )


class DeploymentsProjection(Projection):
    """``deployments``: every live deployment of every project, with its skills."""

    name: ClassVar[str] = "deployments"
    # 2: ``status`` and ``error`` of push-time builds (Z7), folded from
    # ``deployment.created``, ``deployment.built`` and ``deployment.build_failed``.
    version: ClassVar[int] = 2
    filter_subjects: ClassVar[list[str]] = [aggregate_filter(AGG_DEPLOYMENTS)]
    tables: ClassVar[list[str]] = ["deployments"]
    compare_order: ClassVar[dict[str, str]] = {"deployments": "id"}
    ddl: ClassVar[str] = """
    CREATE TABLE IF NOT EXISTS deployments (
        id text PRIMARY KEY,
        project_id text NOT NULL,
        notes text NOT NULL,
        created_at timestamptz NOT NULL,
        bundle_key text NOT NULL,
        bundle_sha256 text NOT NULL,
        bundle_size bigint NOT NULL,
        requirements_sha256 text,
        skills jsonb NOT NULL,
        active boolean NOT NULL DEFAULT false,
        activated_at timestamptz,
        status text NOT NULL DEFAULT 'ready',
        error text
    );
    CREATE INDEX IF NOT EXISTS deployments_by_project
        ON deployments (project_id, created_at DESC, id DESC);
    """

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        for rec in events:
            ev, pid, at = rec.event, rec.envelope.project_id, rec.envelope.at
            if isinstance(ev, DeploymentCreated):
                await conn.execute(
                    """
                    INSERT INTO deployments (id, project_id, notes, created_at, bundle_key,
                        bundle_sha256, bundle_size, requirements_sha256, skills, status)
                    VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (id) DO NOTHING
                    """,
                    ev.deployment_id,
                    pid,
                    ev.notes,
                    at,
                    ev.bundle.key,
                    ev.bundle.sha256,
                    ev.bundle.size,
                    ev.requirements_sha256,
                    msgspec.to_builtins(ev.skills),
                    "building" if ev.build else "ready",
                )
            elif isinstance(ev, DeploymentBuilt):
                await conn.execute(
                    "UPDATE deployments SET status = 'ready' "
                    "WHERE id = $1 AND project_id = $2 AND status = 'building'",
                    ev.deployment_id,
                    pid,
                )
            elif isinstance(ev, DeploymentBuildFailed):
                await conn.execute(
                    "UPDATE deployments SET status = 'failed', error = $3 "
                    "WHERE id = $1 AND project_id = $2 AND status = 'building'",
                    ev.deployment_id,
                    pid,
                    ev.error,
                )
            elif isinstance(ev, DeploymentActivated):
                exists = await conn.fetchval(
                    "SELECT 1 FROM deployments WHERE id = $1 AND project_id = $2",
                    ev.deployment_id,
                    pid,
                )
                if exists:
                    await conn.execute(
                        "UPDATE deployments SET active = (id = $2), "
                        "activated_at = CASE WHEN id = $2 THEN $3 ELSE activated_at END "
                        "WHERE project_id = $1",
                        pid,
                        ev.deployment_id,
                        at,
                    )
            elif isinstance(ev, DeploymentDeleted):
                await conn.execute(
                    "DELETE FROM deployments WHERE id = $1 AND project_id = $2",
                    ev.deployment_id,
                    pid,
                )


class KeysProjection(Projection):
    """``projects`` and ``api_keys`` (prefix and hash only; never a secret)."""

    name: ClassVar[str] = "keys"
    version: ClassVar[int] = 1
    filter_subjects: ClassVar[list[str]] = [
        aggregate_filter(AGG_PROJECT),
        aggregate_filter(AGG_KEY),
    ]
    tables: ClassVar[list[str]] = ["projects", "api_keys"]
    compare_order: ClassVar[dict[str, str]] = {"projects": "id", "api_keys": "prefix"}
    ddl: ClassVar[str] = """
    CREATE TABLE IF NOT EXISTS projects (
        id text PRIMARY KEY,
        name text NOT NULL,
        created_at timestamptz NOT NULL
    );
    CREATE TABLE IF NOT EXISTS api_keys (
        prefix text PRIMARY KEY,
        project_id text NOT NULL,
        secret_sha256 text NOT NULL,
        created_by text NOT NULL,
        created_at timestamptz NOT NULL,
        revoked_at timestamptz
    );
    CREATE INDEX IF NOT EXISTS api_keys_by_project ON api_keys (project_id, created_at);
    """

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        for rec in events:
            ev, pid, at = rec.event, rec.envelope.project_id, rec.envelope.at
            if isinstance(ev, ProjectCreated):
                await conn.execute(
                    "INSERT INTO projects (id, name, created_at) VALUES ($1, $2, $3) "
                    "ON CONFLICT (id) DO NOTHING",
                    pid,
                    ev.name,
                    at,
                )
            elif isinstance(ev, ApiKeyCreated):
                await conn.execute(
                    "INSERT INTO api_keys (prefix, project_id, secret_sha256, created_by, "
                    "created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (prefix) DO NOTHING",
                    ev.prefix,
                    pid,
                    ev.secret_sha256,
                    ev.created_by,
                    at,
                )
            elif isinstance(ev, ApiKeyRevoked):
                await conn.execute(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) "
                    "WHERE prefix = $1 AND project_id = $2",
                    ev.prefix,
                    pid,
                    at,
                )


GATEWAY_PROJECTIONS: list[type[Projection]] = [
    JobsProjection,
    DeploymentsProjection,
    KeysProjection,
    FeedbackProjection,
    SecretsProjection,
]
