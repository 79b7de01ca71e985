"""A job's drive folder kept in step with the drive's bucket (the S3 backend, D8).

With ``PURAS_DRIVE_STORAGE=s3`` the drive's files are objects under
``drive/<project>/`` (:mod:`puras_common.drive_layout`); a job still sees them as the
folder ``./drive/``, a copy on the runner kept across the project's jobs. Before a job
starts, the runner lists the project's objects and brings what changed since its last
sync (only those: a file it holds already, unchanged on both sides, costs nothing; a file
deleted in the bucket goes from the folder too). After the job, and before its terminal
event, what the job wrote is put to the bucket and what it deleted is removed there, so
a file the job wrote can be read through the API once it has ``succeeded``.

What the runner knows of each synced file (its ETag, and the size and mtime it gave the
local copy) is kept beside the folders, never inside a job's view. The bucket's client
is synchronous: each call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from minio import Minio
from minio.error import S3Error

from puras_common.drive_layout import object_key, project_key_prefix
from puras_common.drive_paths import DrivePathError, normalize_file_path
from puras_common.logging import get_logger
from puras_runner.adapters.drive_writer import (
    open_drive_file,
    remove_drive_file,
    stat_drive_file,
    write_drive_file,
)
from puras_runner.adapters.sandbox import Sandbox

__all__ = ["S3DriveSync"]

log = get_logger(__name__)

INDEX_VERSION: Final = 1


class S3DriveSync:
    def __init__(
        self,
        client: Minio,
        bucket: str,
        *,
        drive_root: Path,
        state_dir: Path,
        sandbox: Sandbox | None,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._root = drive_root
        self._state = state_dir
        self._sandbox = sandbox
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, project_id: str) -> asyncio.Lock:
        return self._locks.setdefault(project_id, asyncio.Lock())

    async def pull(self, project_id: str) -> int:
        """Bring the project's folder up to the bucket; how many files were fetched."""
        async with self._lock(project_id):
            return await asyncio.to_thread(self._pull, project_id)

    async def push(self, project_id: str, written: Sequence[str], deleted: Sequence[str]) -> None:
        """Put the job's writes to the bucket and remove its deletes there."""
        if not written and not deleted:
            return
        async with self._lock(project_id):
            await asyncio.to_thread(self._push, project_id, list(written), list(deleted))

    # -- in worker threads ----------------------------------------------------------------

    def _folder(self, project_id: str) -> tuple[Path, int | None]:
        if self._sandbox is not None:
            return self._sandbox.project_drive(project_id), self._sandbox.uid_for(project_id)
        drive = self._root / project_id
        drive.mkdir(parents=True, exist_ok=True)
        return drive, None

    def _index_path(self, project_id: str) -> Path:
        return self._state / f"{project_id}.json"

    def _load(self, project_id: str) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self._index_path(project_id).read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("v") != INDEX_VERSION:
            return {}
        files = data.get("files")
        return files if isinstance(files, dict) else {}

    def _save(self, project_id: str, files: dict[str, dict[str, Any]]) -> None:
        self._state.mkdir(parents=True, exist_ok=True)
        target = self._index_path(project_id)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        tmp.write_text(json.dumps({"v": INDEX_VERSION, "files": files}))
        os.replace(tmp, target)

    def _pull(self, project_id: str) -> int:
        drive, uid = self._folder(project_id)
        prefix = project_key_prefix(project_id)
        index = self._load(project_id)
        remote: dict[str, tuple[str, int]] = {}
        for obj in self._client.list_objects(self._bucket, prefix=prefix, recursive=True):
            name = (obj.object_name or "")[len(prefix) :]
            try:
                path = normalize_file_path(name)
            except DrivePathError:
                continue
            remote[path] = ((obj.etag or "").strip('"'), int(obj.size or 0))
        fetched = 0
        for path, (etag, _size) in remote.items():
            rec = index.get(path)
            local = _fingerprint(drive, path)
            if rec is not None and rec.get("etag") == etag and local == _recorded(rec):
                continue
            scratch = self._state / "incoming"
            scratch.mkdir(parents=True, exist_ok=True)
            tmp = scratch / secrets.token_hex(8)
            try:
                self._client.fget_object(self._bucket, object_key(project_id, path), str(tmp))
                try:
                    write_drive_file(drive, path, tmp, uid=uid)
                except ValueError as exc:
                    log.warning("drive file not synced to the job", path=path, error=str(exc))
                    continue
            except S3Error as exc:
                if exc.code in ("NoSuchKey", "NoSuchObject"):
                    continue  # deleted since the listing
                raise
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            fp = _fingerprint(drive, path)
            if fp is not None:
                index[path] = {"etag": etag, "size": fp[0], "mtime_ns": fp[1]}
            fetched += 1
        for path in [p for p in index if p not in remote]:
            # Deleted in the bucket (through the API): gone here too, unless a job
            # changed the local copy meanwhile (its change goes up at its end).
            if _fingerprint(drive, path) == _recorded(index[path]):
                remove_drive_file(drive, path)
            del index[path]
        self._save(project_id, index)
        return fetched

    def _push(self, project_id: str, written: list[str], deleted: list[str]) -> None:
        drive, _uid = self._folder(project_id)
        index = self._load(project_id)
        for path in written:
            # Opened step by step without following a link: what goes up is the file
            # the scan saw in the drive, never what a link swapped in points at.
            f = open_drive_file(drive, path)
            if f is None:
                continue  # gone again before the end
            with f:
                st = os.fstat(f.fileno())
                fp = (st.st_size, st.st_mtime_ns)
                result = self._client.put_object(
                    self._bucket, object_key(project_id, path), f, st.st_size
                )
            index[path] = {
                "etag": (result.etag or "").strip('"'),
                "size": fp[0],
                "mtime_ns": fp[1],
            }
        for path in deleted:
            with contextlib.suppress(S3Error):
                self._client.remove_object(self._bucket, object_key(project_id, path))
            index.pop(path, None)
        self._save(project_id, index)


def _fingerprint(drive: Path, path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a regular file (never reached through a link), else ``None``."""
    st = stat_drive_file(drive, path)
    return None if st is None else (st.st_size, st.st_mtime_ns)


def _recorded(rec: dict[str, Any]) -> tuple[int, int] | None:
    size, mtime = rec.get("size"), rec.get("mtime_ns")
    if isinstance(size, int) and isinstance(mtime, int):
        return size, mtime
    return None
