"""Reads of the drive's file table (``adapters/projection.py``) for the API."""

from __future__ import annotations

import asyncpg

from puras_drive.domain.files import DriveFile

__all__ = ["PgFileIndex"]

_COLUMNS = (
    "project_id, path, bytes, sha256, content_type, job_id, skill, tool, created_at, "
    "updated_at, seq"
)


class PgFileIndex:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, project_id: str, path: str) -> DriveFile | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM drive_files WHERE project_id = $1 AND path = $2",  # noqa: S608
            project_id,
            path,
        )
        return None if row is None else DriveFile(**dict(row))

    async def children(self, project_id: str, prefix: str) -> tuple[list[str], list[DriveFile]]:
        # substr is 1-based and counts characters, as Python's len does.
        start = len(prefix) + 1
        async with self._pool.acquire() as conn:
            files = await conn.fetch(
                f"SELECT {_COLUMNS} FROM drive_files "  # noqa: S608
                "WHERE project_id = $1 AND starts_with(path, $2) "
                "AND strpos(substr(path, $3), '/') = 0 ORDER BY path",
                project_id,
                prefix,
                start,
            )
            folders = await conn.fetch(
                "SELECT DISTINCT split_part(substr(path, $3), '/', 1) AS name FROM drive_files "
                "WHERE project_id = $1 AND starts_with(path, $2) "
                "AND strpos(substr(path, $3), '/') > 0",
                project_id,
                prefix,
                start,
            )
        return [str(r["name"]) for r in folders], [DriveFile(**dict(r)) for r in files]
