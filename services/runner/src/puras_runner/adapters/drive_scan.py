"""A scan of a project's drive folder: every file a drive path can name, never through
a link (a job may make links; what they point at is not the drive's)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Final

from puras_common.drive_paths import DrivePathError, normalize_file_path
from puras_runner.domain.drive_changes import Fingerprint

__all__ = ["MAX_SCANNED", "scan_drive"]

MAX_SCANNED: Final = 100_000
"""Files a scan looks at; past it the scan stops (and says so): a drive that large
needs the drive API's listing, not a walk per job."""


class DriveTooLargeToScan(Exception):
    pass


def scan_drive(drive: Path, *, limit: int = MAX_SCANNED) -> dict[str, Fingerprint]:
    """Canonical path -> fingerprint of every regular file under ``drive`` (empty when
    the folder does not exist). Raises :class:`DriveTooLargeToScan` past ``limit``."""
    out: dict[str, Fingerprint] = {}
    stack: list[tuple[str, str]] = [(str(drive), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
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
                try:
                    path = normalize_file_path(rel)
                except DrivePathError:
                    continue  # no drive path names it (a job's file called a\\b)
                out[path] = Fingerprint(st.st_ino, st.st_size, st.st_mtime_ns)
                if len(out) > limit:
                    raise DriveTooLargeToScan(f"the drive holds more than {limit} files")
    return out
