"""Job working directories: ``<data_dir>/jobs/<job_id>-<attempt>/`` (R1, R2, D8).

Each holds ``drive`` (a symlink to the project's drive folder ``<drive_root>/<project>/``,
created on demand) and ``tmp/`` (the job's ``TMPDIR``); ``HOME`` is the workdir itself.

At teardown everything the job made in its workdir is deleted, never following the
drive link, so what it wrote to ``drive/`` stays and nothing else does. The emptied
directory (exactly ``drive`` -> the same project's drive, and an empty ``tmp/``) is then
kept for the project's next job, which gets it with one ``rename``: creating directories
and links costs a few hundred microseconds each on a journaling filesystem, a rename a
few tens, and this is on every job's critical path. A directory that is not exactly in
that state is deleted instead.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import secrets
import shutil
import stat
import threading
from pathlib import Path
from typing import Final

from puras_runner.domain.jobs import safe_token

__all__ = ["Workdirs"]

READY_PREFIX: Final = ".ready-"
LOCK_FILE: Final = ".lock"
MAX_PROJECTS: Final = 256
"""Projects whose emptied workdirs are kept (least recently used are dropped)."""


class Workdirs:
    def __init__(self, root: Path, drive_root: Path, *, keep_per_project: int = 4) -> None:
        self.root = root
        self.drive_root = drive_root
        self._ready_root = root / f"{READY_PREFIX}{os.getpid()}"
        self._keep_max = keep_per_project
        self._lock_fd: int | None = None
        self.exclusive = False
        """True if this runner holds the data dir's lock (and so swept it at start)."""
        # Taken on the event loop, refilled from teardown threads.
        self._lock = threading.Lock()
        self._ready: collections.OrderedDict[str, list[Path]] = collections.OrderedDict()

    def reset(self) -> None:
        """At start-up: delete what a runner that died left behind, start with nothing kept.

        Only the runner holding the data dir's lock sweeps (the lock dies with its
        process), so a data dir shared by two live runners never loses a running job's
        workdir; each keeps its emptied workdirs in a folder of its own.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        if self._lock_fd is None:
            self._lock_fd = os.open(
                self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.exclusive = True
            except BlockingIOError:
                self.exclusive = False
        if self.exclusive:
            for entry in os.scandir(self.root):
                if entry.name != LOCK_FILE:
                    self.remove(Path(entry.path))
        self._ready_root.mkdir(parents=True, exist_ok=True)

    def path(self, job_id: str, attempt: int) -> Path:
        return self.root / f"{safe_token('job id', job_id)}-{attempt}"

    def drive(self, project_id: str) -> Path:
        return self.drive_root / safe_token("project id", project_id)

    def create(self, job_id: str, attempt: int, project_id: str) -> Path:
        """The job's workdir, ready to use (a leftover of the same attempt is replaced)."""
        workdir = self.path(job_id, attempt)
        kept = self._take_kept(project_id)
        if kept is not None:
            try:
                os.rename(kept, workdir)
                return workdir
            except OSError:
                # The workdir name is taken (a crashed earlier run) or the kept one is
                # gone: fall back to building one.
                self.remove(kept)
        return self._build(workdir, project_id)

    def _take_kept(self, project_id: str) -> Path | None:
        with self._lock:
            kept = self._ready.get(project_id)
            if not kept:
                return None
            self._ready.move_to_end(project_id)
            return kept.pop()

    def _build(self, workdir: Path, project_id: str) -> Path:
        drive = self.drive(project_id)
        drive.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(workdir, 0o700)
        except FileExistsError:
            self.remove(workdir)
            os.mkdir(workdir, 0o700)
        except FileNotFoundError:
            self.root.mkdir(parents=True, exist_ok=True)
            os.mkdir(workdir, 0o700)
        os.symlink(drive, workdir / "drive", target_is_directory=True)
        os.mkdir(workdir / "tmp", 0o700)
        return workdir

    def release(self, workdir: Path, project_id: str) -> None:
        """Teardown (blocking: run it in a thread). Deletes everything the job made; keeps
        the emptied directory for the project's next job when it can."""
        if not self._keep(workdir, project_id):
            self.remove(workdir)

    def _keep(self, workdir: Path, project_id: str) -> bool:
        try:
            if not self._empty(workdir, self.drive(project_id)):
                return False
        except OSError:
            return False
        evicted: list[Path] = []
        with self._lock:
            kept = self._ready.setdefault(project_id, [])
            self._ready.move_to_end(project_id)
            if len(kept) >= self._keep_max:
                return False
            target = self._ready_root / f"{project_id}.{secrets.token_hex(6)}"
            try:
                os.rename(workdir, target)
            except OSError:
                return False
            kept.append(target)
            while len(self._ready) > MAX_PROJECTS:
                _, old = self._ready.popitem(last=False)
                evicted.extend(old)
        for path in evicted:
            self.remove(path)
        return True

    @staticmethod
    def _empty(workdir: Path, drive: Path) -> bool:
        """Delete what the job created; True if the workdir is left exactly as built."""
        st = os.lstat(workdir)
        if not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o700:
            return False
        seen = set()
        with os.scandir(workdir) as entries:
            for entry in entries:
                if entry.name == "drive":
                    if not entry.is_symlink() or os.readlink(entry.path) != str(drive):
                        return False
                    seen.add("drive")
                elif entry.name == "tmp" and entry.is_dir(follow_symlinks=False):
                    tmp_st = entry.stat(follow_symlinks=False)
                    if stat.S_IMODE(tmp_st.st_mode) != 0o700:
                        return False
                    with os.scandir(entry.path) as inside:
                        for item in inside:
                            _delete(item)
                    seen.add("tmp")
                else:
                    # A file or folder the job (or a library, in $HOME) made.
                    _delete(entry)
        return seen == {"drive", "tmp"}

    def remove(self, workdir: Path) -> None:
        """Delete the workdir; the drive symlink is unlinked, never followed."""

        def _retry(func: object, path: str, _exc: object) -> None:
            # A job may leave read-only folders behind; make them writable and retry.
            parent = os.path.dirname(path)
            with contextlib.suppress(OSError):
                os.chmod(parent, stat.S_IRWXU)
                if os.path.isdir(path) and not os.path.islink(path):
                    os.chmod(path, stat.S_IRWXU)
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)

        if workdir.is_symlink():
            workdir.unlink()
        elif workdir.exists():
            shutil.rmtree(workdir, onerror=_retry)

    def close(self) -> None:
        """Delete the kept directories (at shutdown)."""
        with self._lock:
            self._ready.clear()
        self.remove(self._ready_root)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _delete(entry: os.DirEntry[str]) -> None:
    # Never follows a link: a link is removed itself, whatever it points at.
    if entry.is_dir(follow_symlinks=False):
        shutil.rmtree(entry.path)
    else:
        os.unlink(entry.path)
