"""Deployment virtualenvs, built with ``uv`` once per distinct ``requirements.txt`` (K5).

A venv lives at ``<data_dir>/venvs/<sha256 of requirements.txt, or "base">/``. It is built
under a temporary sibling and renamed into place when complete, so a venv directory that
exists is whole; two runners sharing a data dir race only on the rename, and the loser
throws its copy away. Within one runner a build per key runs once, whoever asks. A failed
build is not remembered: the next job that needs the venv tries again.

The ``puras`` SDK is made importable by copying the runner's own installed package into
the venv's site-packages: it is standard-library only, so this is fast, offline, and
always the SDK version of this runner.

With the job sandbox, ``uv pip install`` runs confined like a job (``build_main``): as the
project's uid, in a cgroup of its own with a time limit, reaching nothing but the
operator's package indexes, with the project's own uv cache (a build cannot poison what
another project's build reads). ``uv venv`` itself and the SDK copy run as the runner (no
package code runs there); a finished venv is owned by root and read-only to everyone
else, and jobs see it read-only at ``/venv``. ``requirements.txt`` lines that point
anywhere but the index (local paths, nested files, other indexes) are refused at deploy
time, so a venv depends on the file's bytes alone and is shared by every deployment with
the same file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from puras_common.logging import get_logger
from puras_runner.adapters.cgroups import CgroupLimits, JobCgroups, remove_cgroup
from puras_runner.domain import errors

if TYPE_CHECKING:
    from puras_runner.adapters.egress import EgressProxy
    from puras_runner.adapters.sandbox import Sandbox

__all__ = ["BuildSandbox", "VenvBuildFailed", "VenvBuilder", "scrub_host_paths", "venv_key"]

log = get_logger(__name__)

OUTPUT_TAIL_CHARS: Final = 4000
READY_MARKER: Final = ".puras-venv-ready"
BUILD_SCRIPT: Final = Path(__file__).resolve().parent.parent / "build_main.py"


class VenvBuildFailed(Exception):
    """The venv could not be built; ``str()`` is the job's error (with uv's output tail)."""


def venv_key(requirements: bytes | None) -> str:
    """``base`` without requirements, else their sha256 (the file names index packages
    only: deploy-time validation refuses anything else)."""
    if requirements is None:
        return "base"
    return hashlib.sha256(requirements).hexdigest()


@dataclass(frozen=True)
class BuildSandbox:
    """How confined builds run (see the module docstring)."""

    sandbox: Sandbox
    egress: EgressProxy
    """The build policy: the package index's hosts only."""
    index_urls: list[str]
    timeout_s: float
    cgroups: JobCgroups | None
    limits: CgroupLimits
    launcher: str = field(default_factory=lambda: sys.executable)


@dataclass(frozen=True, slots=True)
class Venv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.path / "bin"


class VenvBuilder:
    def __init__(
        self,
        root: Path,
        *,
        python: str,
        uv_bin: str,
        sdk_dir: Path,
        cache_dir: Path,
        build_sandbox: BuildSandbox | None = None,
    ) -> None:
        self.root = root
        self._python = python
        self._uv_bin = uv_bin
        self._sdk_dir = sdk_dir
        self._cache_dir = cache_dir
        self._sandbox = build_sandbox
        self._ready: dict[str, Venv] = {}
        self._building: dict[str, asyncio.Task[Venv]] = {}

    def has(self, requirements: bytes | None) -> bool:
        """Whether the venv of ``requirements`` is built in this store already."""
        key = venv_key(requirements)
        return key in self._ready or (self.root / key / READY_MARKER).is_file()

    async def ensure(self, bundle_root: Path, project_id: str) -> Venv:
        """The venv for this bundle's ``requirements.txt``, built if needed (as
        ``project_id``'s uid, when builds are sandboxed)."""
        req_file = bundle_root / "requirements.txt"
        requirements = req_file.read_bytes() if req_file.is_file() else None
        key = venv_key(requirements)
        venv = self._ready.get(key)
        if venv is not None:
            return venv
        task = self._building.get(key)
        if task is None:
            task = asyncio.create_task(
                self._build(key, req_file if requirements else None, project_id)
            )
            self._building[key] = task
            task.add_done_callback(self._forget(key))
        # shield: one waiter cancelled (its job killed) must not cancel everyone's build.
        venv = await asyncio.shield(task)
        self._ready[key] = venv
        return venv

    def _forget(self, key: str) -> Callable[[asyncio.Task[Venv]], None]:
        def forget(_task: asyncio.Task[Venv]) -> None:
            # Done, well or badly: a later job asks again (a failure is retried then).
            self._building.pop(key, None)

        return forget

    async def _build(self, key: str, requirements: Path | None, project_id: str) -> Venv:
        final = self.root / key
        if (final / READY_MARKER).is_file():
            return Venv(final)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{key[:16]}-{secrets.token_hex(6)}"
        log.info("building virtualenv", venv=key, requirements=bool(requirements))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            # --relocatable: the venv is renamed into place after the build.
            await self._uv(
                [
                    "venv",
                    "--python",
                    self._python,
                    "--relocatable",
                    "--no-config",
                    "--python-preference",
                    "only-system",
                    "--quiet",
                    str(tmp),
                ],
                what="uv venv",
                cwd=self.root,
            )
            if requirements is not None and self._sandbox is not None:
                await self._confined_install(tmp, requirements, project_id)
            elif requirements is not None:
                # --no-config: a bundle's own uv/pip configuration must not decide what
                # goes into a venv that other deployments may share.
                await self._uv(
                    [
                        "pip",
                        "install",
                        "--no-config",
                        "--python",
                        str(tmp / "bin" / "python"),
                        "-r",
                        str(requirements),
                    ],
                    what="installing requirements.txt",
                    cwd=self.root,
                )
            await asyncio.to_thread(self._install_sdk, tmp)
            if self._sandbox is not None:
                # Whatever the build left, the venv is root's now and nobody else's to
                # change: jobs of every project that shares it see it read-only.
                await asyncio.to_thread(_own_by_root, tmp)
            (tmp / READY_MARKER).write_text(key)
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / READY_MARKER).is_file():
                    raise
                # Another runner sharing this data dir finished first: use theirs.
                await asyncio.to_thread(shutil.rmtree, tmp, True)
        except VenvBuildFailed as exc:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, tmp, True))
            # The error is shown to the project (a job's error, a push's answer): none of
            # this host's paths in it.
            raise VenvBuildFailed(
                scrub_host_paths(
                    str(exc),
                    {
                        str(tmp): "/venv",
                        str(requirements or ""): "requirements.txt",
                        str(self._cache_dir): "<uv cache>",
                        str(self.root): "<venvs>",
                        str(self.root.parent): "<data dir>",
                    },
                )
            ) from None
        except BaseException:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, tmp, True))
            raise
        log.info("virtualenv ready", venv=key, seconds=round(loop.time() - t0, 3))
        return Venv(final)

    async def _confined_install(self, venv_dir: Path, requirements: Path, project_id: str) -> None:
        box = self._sandbox
        assert box is not None
        uid = box.sandbox.uid_for(project_id)
        cache = self._cache_dir / f"uid-{uid}"
        cache.mkdir(parents=True, exist_ok=True)
        os.chown(cache, uid, uid)
        os.chmod(cache, 0o700)
        await asyncio.to_thread(_chown_tree, venv_dir, uid)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cfg = box.sandbox.build_config(
            project_id=project_id,
            venv_dir=venv_dir,
            requirements=requirements,
            python=Path(self._python),
            uv_bin=Path(self._uv_bin),
            cache_dir=cache,
            report_fd=theirs.fileno(),
            index_urls=box.index_urls,
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                box.launcher,
                "-I",
                str(BUILD_SCRIPT),
                json.dumps(cfg),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                cwd="/",
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
                pass_fds=(theirs.fileno(),),
            )
        finally:
            theirs.close()
        cgroup = None
        egress = None
        ours.setblocking(False)
        try:
            if box.cgroups is not None and box.cgroups.enabled:
                cgroup = box.cgroups.create("build", box.limits)
                if cgroup is not None:
                    cgroup.add(proc.pid)
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
            proc.stdin.close()
            loop = asyncio.get_running_loop()
            try:
                async with asyncio.timeout(box.timeout_s):
                    listener = await _receive_listener(loop, ours)
                    if listener is not None:
                        egress = box.egress.serve(listener, f"build {project_id}")
                    out, _ = await proc.communicate()
            except TimeoutError:
                raise VenvBuildFailed(errors.venv_timeout_error(box.timeout_s)) from None
        finally:
            ours.close()
            if egress is not None:
                egress.close()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                await proc.wait()
            if cgroup is not None:
                usage = cgroup.usage()
                cgroup.kill()
                remove_cgroup(cgroup)
                if usage.oom_killed and proc.returncode not in (0, None):
                    raise VenvBuildFailed(
                        errors.venv_error(
                            "installing requirements.txt",
                            proc.returncode or -1,
                            "the build reached its memory limit of "
                            f"{box.limits.memory_bytes >> 20} MB",
                        )
                    )
        if proc.returncode != 0:
            tail = out.decode("utf-8", errors="replace")[-OUTPUT_TAIL_CHARS:]
            raise VenvBuildFailed(
                errors.venv_error("installing requirements.txt", proc.returncode or -1, tail)
            )

    def _install_sdk(self, venv_dir: Path) -> None:
        site = sorted(venv_dir.glob("lib/python*/site-packages"))
        if not site:
            raise VenvBuildFailed(f"{venv_dir} has no lib/python*/site-packages")
        shutil.copytree(
            self._sdk_dir, site[0] / "puras", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )

    async def _uv(self, args: list[str], *, what: str, cwd: Path) -> None:
        # What uv needs and nothing else of the runner's environment (its credentials are
        # none of a build's business, even an unconfined one).
        env = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")
            or k.startswith("UV_")
            or k.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
        }
        env.setdefault("UV_CACHE_DIR", str(self._cache_dir))
        env["UV_PYTHON_DOWNLOADS"] = "never"
        env["UV_NO_PROGRESS"] = "1"
        env.pop("VIRTUAL_ENV", None)  # the runner's own venv is not the target
        proc = await asyncio.create_subprocess_exec(
            self._uv_bin,
            *args,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await proc.communicate()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            tail = out.decode("utf-8", errors="replace")[-OUTPUT_TAIL_CHARS:]
            raise VenvBuildFailed(errors.venv_error(what, proc.returncode or -1, tail))


_TMP_PATH = re.compile(r"/tmp/[^\s'\"`:,;)]*")  # noqa: S108 - matches paths to hide


def scrub_host_paths(text: str, known: dict[str, str]) -> str:
    """``text`` with the host's paths replaced: the build's own (``known``: the temporary
    venv, the requirements file, the caches, longest first) and any ``/tmp`` path."""
    for path, shown in sorted(known.items(), key=lambda kv: len(kv[0]), reverse=True):
        if path and path not in (".", "/"):
            text = text.replace(path, shown)
    return _TMP_PATH.sub("<tmp>", text)


async def _receive_listener(
    loop: asyncio.AbstractEventLoop, sock: socket.socket
) -> socket.socket | None:
    """The build's egress listener, once its jail is up (``None``: it ended first)."""
    while True:
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(sock, 64, 1)
        except BlockingIOError:
            await _readable(loop, sock)
            continue
        except OSError:
            return None
        if not fds:
            return None
        for extra in fds[1:]:
            os.close(extra)
        return socket.socket(fileno=fds[0])


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(sock.fileno(), ready)
    try:
        await fut
    finally:
        loop.remove_reader(sock.fileno())


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, uid)


def _own_by_root(root: Path) -> None:
    """root:root, and no write bit for group or others, on everything in the venv."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, ""]:
            path = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(path)
            os.lchown(path, 0, 0)
            if not os.path.islink(path):
                os.chmod(path, st.st_mode & 0o755)
