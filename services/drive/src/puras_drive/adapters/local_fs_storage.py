"""The local-filesystem backend of the drive's storage (the embedded default).

A project's files are ``<root>/<project_id>/<drive path>`` (``domain.paths``), the same
folder the runner shows its jobs as ``./drive``. Jobs can make symbolic links there, so
nothing here follows one: every path is walked one name at a time from the project's
folder with ``O_NOFOLLOW`` (``openat``-style, through directory descriptors), which no
link and no rename racing the walk can redirect. A link is not a drive file: it is not
listed, read or zipped, writing through one is refused, and removing a folder removes
the link itself, never what it points at.

Uploads are written under ``<root>/.staging/`` and renamed into place once complete,
so a reader never sees half a file. Filesystem calls block (a network mount): they run
in worker threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import secrets
import stat as stat_mode
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from puras_common.drive_paths import DrivePathError, normalize_file_path, normalize_prefix
from puras_drive.domain.content_types import SNIFF_BYTES, sniff_content_type
from puras_drive.domain.objects import (
    DriveConflict,
    DriveLinkRefused,
    DriveNotFound,
    DriveStorageError,
    DriveTooLarge,
    FileInfo,
    FolderInfo,
    ObjectInfo,
    ObjectStream,
    StoredObject,
)
from puras_drive.domain.paths import STAGING_DIR, check_project_id

__all__ = ["LocalStorage"]

READ_CHUNK: Final = 256 * 1024
"""Bytes per read of a file being streamed out."""
WRITE_BUFFER: Final = 1024 * 1024
"""Bytes gathered before one write (a thread hop per network chunk would cost more)."""

_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: a FIFO a job left in its drive must not hang the open (regular files
# ignore it).
_FILE_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class _Missing(Exception):
    """Some folder of the path does not exist."""


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    # -- the port ----------------------------------------------------------------------

    async def put(
        self,
        project_id: str,
        path: str,
        chunks: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        segments = _file_segments(path)
        check_project_id(project_id)
        staging_fd, temp_name, fd = await asyncio.to_thread(self._open_staged)
        digest = hashlib.sha256()
        head = b""
        size = 0
        pending: list[bytes] = []
        pending_size = 0
        placed = False
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise DriveTooLarge(max_bytes)
                digest.update(chunk)
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_BUFFER:
                    await asyncio.to_thread(_write_all, fd, b"".join(pending))
                    pending, pending_size = [], 0
            await asyncio.to_thread(_write_all, fd, b"".join(pending))
            await asyncio.to_thread(os.fsync, fd)
            await asyncio.to_thread(
                self._place, project_id, segments, staging_fd, temp_name, "/".join(segments)
            )
            placed = True
        finally:
            os.close(fd)
            if not placed:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp_name, dir_fd=staging_fd)
            os.close(staging_fd)
        rel = "/".join(segments)
        return StoredObject(
            path=rel,
            size=size,
            sha256=digest.hexdigest(),
            content_type=sniff_content_type(head, segments[-1]),
        )

    @asynccontextmanager
    async def open(self, project_id: str, path: str) -> AsyncIterator[ObjectStream]:
        segments = _file_segments(path)
        check_project_id(project_id)
        opened = await asyncio.to_thread(self._open_file, project_id, segments)
        if opened is None:
            raise DriveNotFound(f"there is no file {'/'.join(segments)!r} in the drive")
        fd, info = opened
        try:
            yield ObjectStream(info=info, chunks=_read_chunks(fd))
        finally:
            os.close(fd)

    async def stat(self, project_id: str, path: str) -> ObjectInfo | None:
        segments = _file_segments(path)
        check_project_id(project_id)
        opened = await asyncio.to_thread(self._open_file, project_id, segments)
        if opened is None:
            return None
        fd, info = opened
        os.close(fd)
        return info

    async def list_children(self, project_id: str, prefix: str) -> list[FileInfo | FolderInfo]:
        folder = _prefix_segments(prefix)
        check_project_id(project_id)
        return await asyncio.to_thread(self._list, project_id, folder)

    async def delete_file(self, project_id: str, path: str) -> bool:
        segments = _file_segments(path)
        check_project_id(project_id)
        return await asyncio.to_thread(self._delete_file, project_id, segments)

    async def delete_prefix(self, project_id: str, prefix: str) -> int:
        folder = _prefix_segments(prefix)
        check_project_id(project_id)
        return await asyncio.to_thread(self._delete_folder, project_id, folder)

    async def iter_files(self, project_id: str, prefix: str) -> AsyncIterator[FileInfo]:
        folder = _prefix_segments(prefix)
        check_project_id(project_id)
        async for found in self._iter(project_id, folder):
            yield found

    async def _iter(self, project_id: str, folder: list[str]) -> AsyncIterator[FileInfo]:
        # Depth first, one folder read per thread hop; a folder sorts as its name plus
        # "/", so whole paths come out in code point order (as the bucket lists keys).
        entries = await asyncio.to_thread(self._list, project_id, folder)
        for entry in sorted(entries, key=_walk_key):
            if isinstance(entry, FileInfo):
                yield entry
            else:
                async for found in self._iter(project_id, entry.path.split("/")):
                    yield found

    # -- provisioning and walking (in worker threads) -------------------------------------

    def _project_fd(self, project_id: str, *, create: bool) -> int:
        project = self.root / project_id
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                os.mkdir(project, 0o700)
        # The root is the operator's (it may be a link); the project's folder is not.
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return _open_dir(root_fd, project_id)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise _refusal(exc, root_fd, project_id) from None
        finally:
            os.close(root_fd)

    def _walk(self, project_id: str, folder: list[str], *, create: bool = False) -> list[int]:
        """Descriptors of the project's folder and of each folder of ``folder`` in turn
        (the caller closes them). ``_Missing`` if one is not there (and not ``create``),
        ``DriveLinkRefused`` / ``DriveConflict`` if one is a link / not a folder."""
        try:
            fds = [self._project_fd(project_id, create=create)]
        except FileNotFoundError:
            raise _Missing from None
        try:
            for i, name in enumerate(folder):
                made = False
                if create:
                    try:
                        os.mkdir(name, 0o700, dir_fd=fds[-1])
                        made = True
                    except FileExistsError:
                        pass
                try:
                    fds.append(_open_dir(fds[-1], name))
                except FileNotFoundError:
                    raise _Missing from None
                except OSError as exc:
                    raise _refusal(exc, fds[-1], "/".join(folder[: i + 1])) from None
                if made:
                    _hand_over_dir(fds[-2], fds[-1])
        except BaseException:
            _close_all(fds)
            raise
        return fds

    def _open_staged(self) -> tuple[int, str, int]:
        staging = self.root / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True, mode=0o700)
        staging_fd = os.open(staging, _DIR_FLAGS)
        name = f"{secrets.token_hex(16)}.part"
        try:
            fd = os.open(
                name,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=staging_fd,
            )
        except BaseException:
            os.close(staging_fd)
            raise
        return staging_fd, name, fd

    def _place(
        self, project_id: str, segments: list[str], staging_fd: int, temp: str, asked: str
    ) -> None:
        # Folders are made only now, once the bytes are complete: a refused upload
        # leaves no empty folder behind (the bucket has none either).
        try:
            fds = self._walk(project_id, segments[:-1], create=True)
        except _Missing:
            # Only when a folder vanished between its mkdir and its open (a job
            # removing it): the caller may simply try again.
            raise DriveConflict(f"a folder of {asked!r} changed while it was written") from None
        try:
            _hand_over_file(staging_fd, temp, fds[-1])
            os.rename(temp, segments[-1], src_dir_fd=staging_fd, dst_dir_fd=fds[-1])
        except OSError as exc:
            if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise DriveConflict(
                    f"{asked!r} is a folder in the drive; write the file under another "
                    "name, or delete the folder first"
                ) from None
            raise
        finally:
            _close_all(fds)

    def _open_file(self, project_id: str, segments: list[str]) -> tuple[int, ObjectInfo] | None:
        try:
            fds = self._walk(project_id, segments[:-1])
        except (_Missing, DriveStorageError, OSError):
            return None
        try:
            fd = os.open(segments[-1], _FILE_FLAGS, dir_fd=fds[-1])
        except OSError:
            return None  # missing, a link, or unreadable: not a drive file
        finally:
            _close_all(fds)
        try:
            st = os.fstat(fd)
            if not stat_mode.S_ISREG(st.st_mode):
                raise _Missing
            head = os.pread(fd, SNIFF_BYTES, 0)
        except (_Missing, DriveStorageError, OSError):
            os.close(fd)
            return None
        return fd, ObjectInfo(
            path="/".join(segments),
            size=st.st_size,
            modified=_utc(st.st_mtime),
            content_type=sniff_content_type(head, segments[-1]),
        )

    def _list(self, project_id: str, folder: list[str]) -> list[FileInfo | FolderInfo]:
        try:
            fds = self._walk(project_id, folder)
        except (_Missing, DriveStorageError, OSError):
            return []
        base = "".join(f"{s}/" for s in folder)
        found: list[FileInfo | FolderInfo] = []
        try:
            with os.scandir(fds[-1]) as it:
                for entry in it:
                    if not _is_drive_name(entry.name):
                        continue  # a name no drive path can address (a job made it)
                    if entry.is_dir(follow_symlinks=False):
                        found.append(FolderInfo(path=base + entry.name))
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        found.append(
                            FileInfo(
                                path=base + entry.name,
                                size=st.st_size,
                                modified=_utc(st.st_mtime),
                            )
                        )
        finally:
            _close_all(fds)
        return sorted(found, key=lambda e: e.name)

    def _delete_file(self, project_id: str, segments: list[str]) -> bool:
        try:
            fds = self._walk(project_id, segments[:-1])
        except (_Missing, DriveStorageError, OSError):
            return False
        try:
            try:
                st = os.stat(segments[-1], dir_fd=fds[-1], follow_symlinks=False)
            except FileNotFoundError:
                return False
            if not stat_mode.S_ISREG(st.st_mode):
                return False
            os.unlink(segments[-1], dir_fd=fds[-1])
            _prune(fds, segments[:-1])
            return True
        finally:
            _close_all(fds)

    def _delete_folder(self, project_id: str, folder: list[str]) -> int:
        try:
            fds = self._walk(project_id, folder)
        except (_Missing, DriveStorageError, OSError):
            return 0
        try:
            removed = _remove_contents(fds[-1])
            if folder:
                os.rmdir(folder[-1], dir_fd=fds[-2])
                _prune(fds[:-1], folder[:-1])
            return removed
        finally:
            _close_all(fds)


# -- helpers ----------------------------------------------------------------------------


def _file_segments(path: str) -> list[str]:
    return normalize_file_path(path).split("/")


def _prefix_segments(prefix: str) -> list[str]:
    canonical = normalize_prefix(prefix)
    return canonical.rstrip("/").split("/") if canonical else []


def _is_drive_name(name: str) -> bool:
    try:
        return normalize_file_path(name) == name
    except DrivePathError:
        return False


def _walk_key(entry: FileInfo | FolderInfo) -> str:
    return entry.name + "/" if isinstance(entry, FolderInfo) else entry.name


def _open_dir(dir_fd: int, name: str) -> int:
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _close_all(fds: list[int]) -> None:
    for fd in reversed(fds):
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_chunks(fd: int) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        offset = 0
        while True:
            chunk = await asyncio.to_thread(os.pread, fd, READ_CHUNK, offset)
            if not chunk:
                return
            offset += len(chunk)
            yield chunk

    return chunks()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def _refusal(exc: OSError, dir_fd: int, where: str) -> Exception:
    """What it means that the folder ``where`` (its last name in ``dir_fd``) could not
    be opened."""
    name = where.rsplit("/", 1)[-1]
    try:
        is_link = stat_mode.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        is_link = False
    if is_link or exc.errno == errno.ELOOP:
        return DriveLinkRefused(
            f"{where!r} is a symbolic link, which the drive does not follow; use a real folder"
        )
    if exc.errno == errno.ENOTDIR:
        return DriveConflict(
            f"{where!r} is a file in the drive, not a folder; use another folder, or "
            "delete that file first"
        )
    return exc


def _remove_contents(dir_fd: int) -> int:
    """Remove everything in the folder ``dir_fd`` without following a link; how many
    regular files went."""
    removed = 0
    with os.scandir(dir_fd) as it:
        entries = list(it)
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            sub = _open_dir(dir_fd, entry.name)
            try:
                removed += _remove_contents(sub)
            finally:
                os.close(sub)
            os.rmdir(entry.name, dir_fd=dir_fd)
        else:
            removed += entry.is_file(follow_symlinks=False)
            os.unlink(entry.name, dir_fd=dir_fd)
    return removed


def _prune(fds: list[int], folder: list[str]) -> None:
    """Remove the now-empty folders of ``folder``, deepest first: a folder is there as
    long as a file is under it, as in the bucket. ``fds[i]`` is the folder holding
    ``folder[i]``."""
    for i in range(len(folder) - 1, -1, -1):
        try:
            os.rmdir(folder[i], dir_fd=fds[i])
        except OSError:
            return  # not empty (or already gone): so are its parents


def _hand_over_dir(parent_fd: int, fd: int) -> None:
    """A folder the drive just made belongs to whoever owns the folder it is in: once
    the runner has given a project's drive to its jobs' uid, what an upload adds there is
    theirs to read, change and delete (D8). Through the descriptor: a link a job swapped
    in meanwhile is never followed."""
    owner = os.fstat(parent_fd)
    if os.geteuid() == 0:
        os.fchown(fd, owner.st_uid, owner.st_gid)
    os.fchmod(fd, 0o770)


def _hand_over_file(staging_fd: int, temp: str, folder_fd: int) -> None:
    """The staged file, before it is moved into ``folder_fd``: owned like that folder,
    readable and writable by its owner and group (the staging area is the drive's own,
    so nothing else can touch the name meanwhile)."""
    owner = os.fstat(folder_fd)
    if os.geteuid() == 0:
        os.chown(temp, owner.st_uid, owner.st_gid, dir_fd=staging_fd, follow_symlinks=False)
    os.chmod(temp, 0o660, dir_fd=staging_fd)
