"""Files the runner itself puts in a project's drive folder (a media call's output).

The runner is root and the folder belongs to the project's uid, and the project's jobs
may have made links in it: every step of the path is opened relative to the folder with
``O_NOFOLLOW`` (a link is refused, never followed), missing folders are made and given to
the project's uid, and the file is written under a temporary name next to its final one
and renamed over it, so a reader sees the old file or the new one. The path itself is
already canonical (:mod:`puras_common.drive_paths`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from puras_common.drive_paths import normalize_file_path

__all__ = ["open_drive_file", "remove_drive_file", "stat_drive_file", "write_drive_file"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def write_drive_file(drive: Path, path: str, source: Path, *, uid: int | None) -> int:
    """Copy ``source`` to ``path`` in the drive folder ``drive``; its size. Raises
    ``ValueError`` for a path the drive refuses or one that runs into a link or a file."""
    canonical = normalize_file_path(path)
    *folders, name = canonical.split("/")
    drive.mkdir(parents=True, exist_ok=True)
    fd = os.open(drive, _DIR_FLAGS)
    try:
        for folder in folders:
            try:
                os.mkdir(folder, 0o770, dir_fd=fd)
                if uid is not None:
                    os.chown(folder, uid, uid, dir_fd=fd, follow_symlinks=False)
            except FileExistsError:
                pass
            try:
                child = os.open(folder, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise ValueError(f"cannot write {canonical}: {folder} is not a folder") from exc
            os.close(fd)
            fd = child
        tmp = f".{name}.{secrets.token_hex(6)}.part"
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o660, dir_fd=fd)
        try:
            with open(source, "rb") as src, os.fdopen(out, "wb", closefd=False) as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
                dst.flush()
                os.fsync(out)
                size = dst.tell()
            if uid is not None:
                os.fchown(out, uid, uid)
        finally:
            os.close(out)
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        if st is not None and not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise ValueError(f"cannot write {canonical}: a folder has that name")
        # rename replaces a link itself, never what it points at.
        os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        return size
    finally:
        os.close(fd)


def _folder_fd(drive: Path, folders: list[str]) -> int:
    """A descriptor of ``drive/<folders>``, every step opened without following a link
    (``OSError`` if one is missing, a link or not a folder)."""
    fd = os.open(drive, _DIR_FLAGS)
    try:
        for folder in folders:
            child = os.open(folder, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def stat_drive_file(drive: Path, path: str) -> os.stat_result | None:
    """The regular file at ``path`` (never reached through a link), else ``None``."""
    *folders, name = path.split("/")
    try:
        fd = _folder_fd(drive, folders)
    except OSError:
        return None
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except OSError:
        return None
    finally:
        os.close(fd)
    return st if stat.S_ISREG(st.st_mode) else None


def open_drive_file(drive: Path, path: str) -> BinaryIO | None:
    """The regular file at ``path`` open for reading (never through a link), else ``None``."""
    *folders, name = path.split("/")
    try:
        fd = _folder_fd(drive, folders)
    except OSError:
        return None
    try:
        ffd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(ffd).st_mode):
        os.close(ffd)
        return None
    return os.fdopen(ffd, "rb")


def remove_drive_file(drive: Path, path: str) -> bool:
    """Unlink the file (or link) at ``path``, never following a link on the way."""
    *folders, name = path.split("/")
    try:
        fd = _folder_fd(drive, folders)
    except OSError:
        return False
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            return False
        os.unlink(name, dir_fd=fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
