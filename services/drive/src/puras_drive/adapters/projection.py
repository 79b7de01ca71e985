"""The drive's file table in Postgres: ``drive_files``, folded from every project's drive
events by ``domain.files`` (one row per file; a write replaces it, a delete removes its
paths or everything under its prefix). Rebuildable from the log like every projection:
rows come from the events alone.
"""

from __future__ import annotations

from typing import ClassVar

import asyncpg

from puras_common.events.subjects import AGG_DRIVE, aggregate_filter
from puras_common.projection.base import Projection, RecordedEvent
from puras_drive.domain.files import DeleteFiles, WriteFile, change_for

__all__ = ["DRIVE_FILES_TABLE", "DriveFilesProjection"]

DRIVE_FILES_TABLE = "drive_files"


class DriveFilesProjection(Projection):
    name: ClassVar[str] = "drive"
    version: ClassVar[int] = 1
    filter_subjects: ClassVar[list[str]] = [aggregate_filter(AGG_DRIVE)]
    tables: ClassVar[list[str]] = [DRIVE_FILES_TABLE]
    compare_order: ClassVar[dict[str, str]] = {DRIVE_FILES_TABLE: "project_id, path"}
    # COLLATE "C": paths sort (and prefixes range) by code point, as storage lists them.
    ddl: ClassVar[str] = """
    CREATE TABLE IF NOT EXISTS drive_files (
        project_id text NOT NULL,
        path text COLLATE "C" NOT NULL,
        bytes bigint NOT NULL,
        sha256 text NOT NULL,
        content_type text NOT NULL,
        job_id text,
        skill text,
        tool text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        seq bigint NOT NULL,
        PRIMARY KEY (project_id, path)
    );
    """

    async def apply(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> None:
        # One statement per event, in order: a drive's writes and deletes are few next to
        # the ledger's charges, and a delete must see the writes before it.
        for rec in events:
            change = change_for(rec)
            if isinstance(change, WriteFile):
                r = change.row
                await conn.execute(
                    "INSERT INTO drive_files (project_id, path, bytes, sha256, content_type, "
                    "job_id, skill, tool, created_at, updated_at, seq) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
                    "ON CONFLICT (project_id, path) DO UPDATE SET bytes = EXCLUDED.bytes, "
                    "sha256 = EXCLUDED.sha256, content_type = EXCLUDED.content_type, "
                    "job_id = EXCLUDED.job_id, skill = EXCLUDED.skill, tool = EXCLUDED.tool, "
                    "updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq "
                    # Only a newer write replaces a row (a replay changes nothing), and
                    # created_at stays the first write's.
                    "WHERE drive_files.seq < EXCLUDED.seq",
                    r.project_id,
                    r.path,
                    r.bytes,
                    r.sha256,
                    r.content_type,
                    r.job_id,
                    r.skill,
                    r.tool,
                    r.created_at,
                    r.updated_at,
                    r.seq,
                )
            elif isinstance(change, DeleteFiles):
                await conn.execute(
                    "DELETE FROM drive_files WHERE project_id = $1 AND seq < $4 "
                    "AND (path = ANY($2::text[]) "
                    "OR ($3::text IS NOT NULL AND starts_with(path, $3::text)))",
                    change.project_id,
                    list(change.paths),
                    change.prefix,
                    change.seq,
                )
