"""A scan of a project's drive folder: every file a drive path can name, never through
a link (a job may make links; what they point at is not the drive's)."""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from puras_common.drive_paths import DrivePathError, normalize_file_path
from puras_runner.domain.drive_changes import Fingerprint

__all__ = ["MAX_SCANNED", "DriveTooLargeToScan", "ScanOverBudget", "scan_drive"]

MAX_SCANNED: Final = 100_000
"""Files a scan looks at; past it the scan stops (and says so): a drive that large
needs the drive API's listing, not a walk per job."""


class DriveTooLargeToScan(Exception):
    pass


class ScanOverBudget(Exception):
    """The scan met more entries than its ``budget``: it was given up, not finished."""


@functools.lru_cache(maxsize=2048)
def _drive_path(rel: str) -> str | None:
    """The canonical drive path of a file's relative name (``None``: none names it).
    Remembered: a job's drive is scanned twice per job with the same names, and the
    normalizer's checks cost far more than the ``lstat`` beside them."""
    try:
        return normalize_file_path(rel)
    except DrivePathError:
        return None


def scan_drive(
    drive: str | Path, *, limit: int = MAX_SCANNED, budget: int | None = None
) -> dict[str, Fingerprint]:
    """Canonical path -> fingerprint of every regular file under ``drive`` (empty when
    the folder does not exist). Raises :class:`DriveTooLargeToScan` past ``limit``
    files, and :class:`ScanOverBudget` past ``budget`` directory entries of any kind
    (a bound on the time a scan may take where it must not take long)."""
    out: dict[str, Fingerprint] = {}
    stack: list[tuple[str, str]] = [(str(drive), "")]
    seen = 0
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with entries:
            seen = _scan_folder(entries, prefix, out, stack, limit, budget, seen)
    return out


def _scan_folder(
    entries: Iterator[os.DirEntry[str]],
    prefix: str,
    out: dict[str, Fingerprint],
    stack: list[tuple[str, str]],
    limit: int,
    budget: int | None,
    seen: int,
) -> int:
    """One folder's entries into ``out`` (its folders onto ``stack``); entries seen."""
    for entry in entries:
        seen += 1
        if budget is not None and seen > budget:
            raise ScanOverBudget(f"more than {budget} entries")
        rel = prefix + entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # gone meanwhile
        if stat.S_ISDIR(st.st_mode):
            stack.append((entry.path, rel + "/"))
        elif stat.S_ISREG(st.st_mode):
            if entry.name.startswith(".") and entry.name.endswith(".part"):
                continue  # a write in progress (renamed into place when done)
            path = _drive_path(rel)
            if path is None:
                continue  # no drive path names it (a job's file called a\\b)
            out[path] = Fingerprint(st.st_ino, st.st_size, st.st_mtime_ns)
            if len(out) > limit:
                raise DriveTooLargeToScan(f"the drive holds more than {limit} files")
    return seen
