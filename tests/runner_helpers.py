"""Helpers for the runner's integration tests (a real nats-server): bundles built in
memory, work published, job events awaited, processes looked up in /proc."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import textwrap
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from puras_common.bundles import NatsBundleStore, bundle_key, sha256_hex
from puras_common.bus import Bus
from puras_common.events.base import Envelope, Event, decode_envelope, decode_event
from puras_common.events.commands import RunJob
from puras_common.events.ids import deployment_created_id
from puras_common.events.subjects import (
    AGG_DEPLOYMENTS,
    AGG_JOB,
    WORK_STREAM,
    event_subject,
    work_subject,
)
from puras_common.events.types import BundleRef, DeploymentCreated, SkillRecord
from puras_common.ids import new_id
from puras_common.manifest import validate_bundle
from puras_runner.adapters.secrets import NoSecrets
from puras_runner.app.ports import SecretsProvider
from puras_runner.bootstrap import App, start_runner
from puras_runner.settings import RunnerSettings

TERMINAL = ("job.succeeded", "job.failed", "job.cancelled")


def skill_files(name: str, code: str, **manifest: Any) -> dict[str, str]:
    """``skills/<name>/skill.yaml`` + ``main.py`` (entrypoint ``main.py:run``)."""
    doc = {"description": f"test skill {name}", "entrypoint": "main.py:run", **manifest}
    return {
        f"skills/{name}/skill.yaml": yaml.safe_dump(doc),
        f"skills/{name}/main.py": textwrap.dedent(code),
    }


def make_zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in sorted(files.items()):
            zf.writestr(path, text)
    return buf.getvalue()


@dataclass(frozen=True)
class Deployed:
    project_id: str
    deployment_id: str
    key: str
    sha256: str
    requirements_sha256: str | None


@dataclass
class Recorded:
    envelope: Envelope
    event: Event | None

    @property
    def type(self) -> str:
        return self.envelope.type


@dataclass
class JobWatch:
    """Every event appended to one job's subject, as it is appended."""

    job: RunJob
    events: list[Recorded] = field(default_factory=list)
    _queue: asyncio.Queue[Recorded] = field(default_factory=asyncio.Queue)

    async def next(self, timeout: float = 30) -> Recorded:
        rec = await asyncio.wait_for(self._queue.get(), timeout)
        self.events.append(rec)
        return rec

    async def until(self, pred: Callable[[Recorded], bool], timeout: float = 60) -> Recorded:
        deadline = time.monotonic() + timeout
        while True:
            rec = await self.next(max(0.01, deadline - time.monotonic()))
            if pred(rec):
                return rec

    async def terminal(self, timeout: float = 60) -> Recorded:
        return await self.until(lambda r: r.type in TERMINAL, timeout)

    def of(self, type_: str) -> list[Any]:
        return [r.event for r in self.events if r.type == type_]


class Harness:
    def __init__(self, bus: Bus, nats_url: str, tmp_path: Path, pool: str) -> None:
        self.bus = bus
        self.nats_url = nats_url
        self.tmp = tmp_path
        self.pool = pool
        self.store = NatsBundleStore(bus.js)
        self.project_id = new_id()

    def settings(self, **overrides: Any) -> RunnerSettings:
        values: dict[str, Any] = {
            "env": "test",
            "nats_url": self.nats_url,
            "pool": self.pool,
            "data_dir": self.tmp / "runner",
            "drive_root": self.tmp / "drive",
            "ack_wait_s": 2,
            "slots": 4,
            "default_timeout_s": 30,
            "memory_limit_mb": 512,
            "shutdown_grace_s": 2,
            "log_level": "warning",
            "log_format": "console",
        }
        values.update(overrides)
        return RunnerSettings(**values)

    async def deploy(self, files: dict[str, str], project_id: str | None = None) -> Deployed:
        """Store the bundle and record its ``DeploymentCreated``, as the gateway does
        (the runner takes the skills from that event)."""
        project = project_id or self.project_id
        deployment = new_id()
        data = make_zip(files)
        key = bundle_key(project, deployment)
        await self.store.put(key, data)
        validated = validate_bundle(data)
        await self.bus.append(
            DeploymentCreated(
                deployment_id=deployment,
                notes="",
                bundle=BundleRef(key=key, sha256=sha256_hex(data), size=len(data)),
                requirements_sha256=validated.requirements_sha256,
                skills=[
                    msgspec.convert(msgspec.to_builtins(s), SkillRecord) for s in validated.skills
                ],
            ),
            project_id=project,
            aggregate=AGG_DEPLOYMENTS,
            aggregate_id=project,
            event_id=deployment_created_id(deployment),
        )
        req = files.get("requirements.txt")
        return Deployed(
            project,
            deployment,
            key,
            sha256_hex(data),
            sha256_hex(req.encode()) if req is not None else None,
        )

    async def submit(
        self,
        dep: Deployed,
        skill: str,
        inputs: dict[str, Any] | None = None,
        *,
        timeout_seconds: int | None = None,
        job_id: str | None = None,
        pool: str | None = None,
    ) -> JobWatch:
        """Subscribe to the job's subject, then queue its work item."""
        job = RunJob(
            job_id=job_id or new_id(),
            project_id=dep.project_id,
            skill=skill,
            inputs=inputs or {},
            deployment_id=dep.deployment_id,
            created_at=datetime.now(UTC),
            bundle_key=dep.key,
            bundle_sha256=dep.sha256,
            requirements_sha256=dep.requirements_sha256,
            timeout_seconds=timeout_seconds,
        )
        watch = JobWatch(job)

        async def on_msg(msg: Any) -> None:
            env = decode_envelope(msg.data)
            watch._queue.put_nowait(Recorded(env, decode_event(env)))

        await self.bus.nc.subscribe(event_subject(job.project_id, AGG_JOB, job.job_id), cb=on_msg)
        await self.bus.nc.flush()
        await self.bus.publish_raw(
            work_subject(pool or self.pool),
            msgspec.json.encode(job),
            msg_id=f"{job.job_id}:work",
            stream=WORK_STREAM,
        )
        return watch

    async def run(
        self, dep: Deployed, skill: str, inputs: dict[str, Any] | None = None, **kw: Any
    ) -> JobWatch:
        watch = await self.submit(dep, skill, inputs, **kw)
        await watch.terminal()
        return watch


def processes_with(marker: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            if marker not in cmdline:
                continue
            if not alive(int(entry)):
                continue
        except OSError:
            continue
        found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


async def eventually(pred: Callable[[], bool], timeout: float = 10, what: str = "") -> None:
    """Wait (bounded) for a condition only the OS can tell us about (a process gone, a
    consumer's ack count): there is no event to wait on for those."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.02)


@dataclass
class RunningRunner:
    runner: App
    _stop: asyncio.Event
    _task: asyncio.Task[None]

    @property
    def settings(self) -> RunnerSettings:
        return self.runner.settings

    async def stop(self) -> None:
        """SIGTERM-equivalent: stop pulling, let jobs finish (grace), clean up."""
        self._stop.set()
        await asyncio.wait_for(asyncio.shield(self._task), 60)


StartRunner = Callable[..., Awaitable[RunningRunner]]


# -- fixtures (imported by the conftest of each folder that uses them) -------------------


@pytest.fixture
def harness(bus: Bus, nats_server: Any, tmp_path: Path) -> Harness:
    return Harness(bus, nats_server.url, tmp_path, pool=f"t{new_id().replace('-', '')[:12]}")


@pytest.fixture
async def start(harness: Harness) -> AsyncIterator[StartRunner]:
    """Start in-process runners; each is stopped (cleanly) at the end of the test."""
    running: list[RunningRunner] = []

    async def _start(secrets: SecretsProvider | None = None, **overrides: Any) -> RunningRunner:
        runner = await start_runner(harness.settings(**overrides), secrets=secrets or NoSecrets())
        stop = asyncio.Event()
        handle = RunningRunner(runner, stop, asyncio.create_task(runner.run(stop)))
        running.append(handle)
        return handle

    yield _start
    for handle in running:
        with contextlib.suppress(Exception):
            await handle.stop()
