"""Deployment virtualenvs, built with ``uv`` once per distinct ``requirements.txt`` (K5).

A venv lives at ``<data_dir>/venvs/<sha256 of requirements.txt, or "base">/``. It is built
under a temporary sibling and renamed into place when complete, so a venv directory that
exists is whole; two runners sharing a data dir race only on the rename, and the loser
throws its copy away. Within one runner a build per key runs once, whoever asks. A failed
build is not remembered: the next job that needs the venv tries again.

The ``puras`` SDK is made importable by copying the runner's own installed package into
the venv's site-packages: it is standard-library only, so this is fast, offline, and
always the SDK version of this runner.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from puras_common.logging import get_logger
from puras_runner.domain import errors

__all__ = ["VenvBuildFailed", "VenvBuilder", "has_local_references", "venv_key"]

log = get_logger(__name__)

OUTPUT_TAIL_CHARS: Final = 4000
READY_MARKER: Final = ".puras-venv-ready"

# Requirement lines that point into the bundle (or elsewhere on disk) rather than at an
# index: their meaning depends on the bundle, not only on the file's bytes.
_LOCAL_REF: Final = re.compile(
    r"^\s*(-e\b|--editable\b|-r\b|--requirement\b|-c\b|--constraint\b|-f\b|--find-links\b"
    r"|\.|/|file:)|\s@\s*file:",
    re.IGNORECASE,
)


class VenvBuildFailed(Exception):
    """The venv could not be built; ``str()`` is the job's error (with uv's output tail)."""


def has_local_references(requirements: bytes) -> bool:
    for line in requirements.decode("utf-8", errors="replace").splitlines():
        line = line.split(" #", 1)[0]
        if line.strip() and not line.lstrip().startswith("#") and _LOCAL_REF.search(line):
            return True
    return False


def venv_key(requirements: bytes | None, deployment_id: str) -> str:
    """``base`` without requirements, else their sha256.

    Requirements that reference local paths get a per-deployment venv: two bundles with
    the same ``requirements.txt`` bytes may ship different local packages, and a venv
    shared across projects must never carry one project's code into another's.
    """
    if requirements is None:
        return "base"
    digest = hashlib.sha256(requirements).hexdigest()
    if has_local_references(requirements):
        return f"{digest}-{deployment_id}"
    return digest


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
        self, root: Path, *, python: str, uv_bin: str, sdk_dir: Path, cache_dir: Path
    ) -> None:
        self.root = root
        self._python = python
        self._uv_bin = uv_bin
        self._sdk_dir = sdk_dir
        self._cache_dir = cache_dir
        self._ready: dict[str, Venv] = {}
        self._building: dict[str, asyncio.Task[Venv]] = {}

    async def ensure(self, bundle_root: Path, deployment_id: str) -> Venv:
        """The venv for this bundle's ``requirements.txt``, built if needed."""
        req_file = bundle_root / "requirements.txt"
        requirements = req_file.read_bytes() if req_file.is_file() else None
        key = venv_key(requirements, deployment_id)
        venv = self._ready.get(key)
        if venv is not None:
            return venv
        task = self._building.get(key)
        if task is None:
            task = asyncio.create_task(
                self._build(key, req_file if requirements else None, bundle_root)
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

    async def _build(self, key: str, requirements: Path | None, bundle_root: Path) -> Venv:
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
            if requirements is not None:
                # --no-config: a bundle's own uv/pip configuration must not decide what
                # goes into a venv that other deployments may share. cwd = the bundle,
                # so relative paths in requirements.txt resolve inside it.
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
                    cwd=bundle_root,
                )
            await asyncio.to_thread(self._install_sdk, tmp)
            (tmp / READY_MARKER).write_text(key)
            try:
                os.rename(tmp, final)
            except OSError:
                if not (final / READY_MARKER).is_file():
                    raise
                # Another runner sharing this data dir finished first: use theirs.
                await asyncio.to_thread(shutil.rmtree, tmp, True)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(shutil.rmtree, tmp, True))
            raise
        log.info("virtualenv ready", venv=key, seconds=round(loop.time() - t0, 3))
        return Venv(final)

    def _install_sdk(self, venv_dir: Path) -> None:
        site = sorted(venv_dir.glob("lib/python*/site-packages"))
        if not site:
            raise VenvBuildFailed(f"{venv_dir} has no lib/python*/site-packages")
        shutil.copytree(
            self._sdk_dir, site[0] / "puras", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )

    async def _uv(self, args: list[str], *, what: str, cwd: Path) -> None:
        env = dict(os.environ)
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
