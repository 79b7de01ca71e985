"""Warm template processes, one per (deployment, skill), and the runner's side of their
protocol (see :mod:`puras_runner.template_main` for the protocol itself).

A :class:`TemplateProcess` is started lazily with the deployment venv's interpreter,
serves many jobs at once (each in its own forked child) and is stopped after
``template_idle_s`` without a job, or as soon as none of its jobs runs once its
deployment is no longer the project's active one. One that crashes is replaced on the
next job.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from puras_common.logging import get_logger
from puras_runner.adapters.cgroups import JobCgroup, JobCgroups, Usage, remove_cgroup
from puras_runner.adapters.egress import EgressListener, EgressProxy
from puras_runner.template_main import (
    CONTROL,
    EXIT,
    KILL,
    READY,
    SPARE,
    SPARE_ERROR,
    SPARE_READY,
    TOOK,
)

__all__ = [
    "TEMPLATE_SCRIPT",
    "ChildHandle",
    "TemplateError",
    "TemplateKey",
    "TemplatePool",
    "TemplateProcess",
    "TemplateSpec",
]

log = get_logger(__name__)

TEMPLATE_SCRIPT: Final = Path(__file__).resolve().parent.parent / "template_main.py"
"""Run by path: it must not be imported from the venv (see its docstring)."""

STDERR_TAIL_LINES: Final = 40
STDERR_LOG_LINES: Final = 200
"""Lines of a template's own stderr relayed to the runner's log (import-time noise is
bounded; the tail is kept for start-up failures)."""

TemplateKey = tuple[str, str]
"""(deployment id, skill name)."""


class TemplateError(RuntimeError):
    """A template could not be started, or went away while being used."""


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    python: Path
    """The deployment venv's interpreter."""
    venv_bin: Path
    bundle_root: Path
    skill_dir: Path
    module_file: str
    """Entrypoint file, relative to ``skill_dir``."""
    function: str
    deployment_id: str
    skill: str
    limits: dict[str, int] = field(default_factory=dict, hash=False)
    """rlimits every job of this template gets (see ``template_main``); CPU time, which
    depends on the job's timeout, comes with each job."""
    project_id: str = ""
    jail: dict[str, Any] | None = field(default=None, hash=False)
    """The sandbox (``module``: the jail module's path, ``template`` and ``job``: the
    specs of :mod:`puras_runner.jail`), or ``None`` for an unconfined template."""


@dataclass(eq=False)
class ChildHandle:
    """One job's child process, from the moment it was handed its job."""

    pid: int
    """The child as its template knows it (the key of its ``exit`` message). Without the
    sandbox also a host pid and the job's process group (``setsid`` before it waited);
    a confined template has a pid namespace of its own, where this pid means nothing
    to the runner."""
    exited: asyncio.Future[int | None]
    """The child's raw wait status, or ``None`` if its template went away first."""
    fork_us: float = 0.0
    cgroup: JobCgroup | None = None
    """The job's own cgroup, if the runner has cgroups."""
    usage: Usage | None = None
    """What the job's cgroup counted, once it ended."""
    host_pid: int = 0
    """The job's process as the runner sees it (SCM_CREDENTIALS of its "ready")."""
    pid_is_host: bool = True
    """``pid`` is a host pid (an unconfined template)."""
    egress: EgressListener | None = None
    """The proxy serving the job's egress listener, closed when the job ends."""
    cgroups: JobCgroups | None = None
    """Where its cgroup goes back to when the job is over."""

    def kill(self) -> None:
        """SIGKILL everything in the job's cgroup, and its process (its group, without
        the sandbox). A no-op once the exit was reported (a pid may be reused after
        that)."""
        if self.exited.done():
            return
        if self.cgroup is not None:
            self.cgroup.kill()
        if self.pid_is_host:
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(self.pid, signal.SIGKILL)
        elif self.host_pid:
            # pid 1 of the job's namespace: the kernel ends everything in it with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.host_pid, signal.SIGKILL)

    def finish(self) -> None:
        """After the exit: nothing of the job may be left; read its usage, remove its
        cgroup (a busy one is retried by the pool's sweep)."""
        if self.egress is not None:
            self.egress.close()
            self.egress = None
        cg = self.cgroup
        if cg is None:
            return
        empty = cg.kill()
        self.usage = cg.usage()
        self.cgroup = None
        if self.cgroups is None or not self.cgroups.release(cg, seen_empty=empty):
            remove_cgroup(cg)


@dataclass(eq=False)
class _Spare:
    pid: int
    sock: socket.socket
    fork_us: float
    cgroup: JobCgroup | None = None
    job_pid: int = 0
    """The job's process, as the runner sees it."""
    egress: EgressListener | None = None


@dataclass(frozen=True, slots=True)
class _Started:
    import_ms: float
    import_error: bool


_decode_error = msgspec.json.Decoder(dict[str, Any]).decode
_FD_ANCILLARY: Final = socket.CMSG_LEN(4 * array.array("i").itemsize)
_UCRED: Final = struct.Struct("iII")
_CRED_ANCILLARY: Final = socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(
    array.array("i").itemsize
)


class TemplateProcess:
    """A running template, its spare children and the jobs it runs."""

    def __init__(
        self,
        key: TemplateKey,
        spec: TemplateSpec,
        proc: asyncio.subprocess.Process,
        sock: socket.socket,
        cgroups: JobCgroups | None = None,
        egress: EgressProxy | None = None,
    ) -> None:
        self.key = key
        self.spec = spec
        self._egress = egress
        self._proc = proc
        self._sock = sock
        self._cgroups = cgroups if cgroups is not None and cgroups.enabled else None
        self._cgroup: JobCgroup | None = None
        self._pending: set[_Spare] = set()
        """Spares forked but not ready yet (their process still sets itself up)."""
        self._loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[_Started] = self._loop.create_future()
        self._spares: collections.deque[_Spare] = collections.deque()
        self._spare_waiters: collections.deque[asyncio.Future[_Spare]] = collections.deque()
        self._jobs: dict[int, ChildHandle] = {}
        self._closed = False
        self.active = 0
        """Jobs handed out and not yet released by their owner (:meth:`job_done`)."""
        self.handed = 0
        """Jobs handed to this template so far (counted as their hand-off begins)."""
        self.retired = False
        """Its deployment is no longer the project's active one: it stops once idle."""
        self.on_retired_idle: Callable[[TemplateProcess], None] | None = None
        self.last_used = time.monotonic()
        self.import_ms = 0.0
        self.import_error = False
        self.started_ms = 0.0
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._stderr_task = asyncio.create_task(self._relay_stderr())
        self._loop.add_reader(sock.fileno(), self._on_readable)

    @classmethod
    async def start(
        cls,
        key: TemplateKey,
        spec: TemplateSpec,
        *,
        ready_timeout: float,
        spares: int = 2,
        cgroups: JobCgroups | None = None,
        egress: EgressProxy | None = None,
    ) -> TemplateProcess:
        t0 = time.perf_counter()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        cfg = {
            "fd": theirs.fileno(),
            "runner_pid": os.getpid(),
            "bundle_root": str(spec.bundle_root),
            "skill_dir": str(spec.skill_dir),
            "module_file": spec.module_file,
            "function": spec.function,
            "limits": spec.limits,
            "spares": spares,
            "jail": spec.jail,
        }
        # The template's environment is minimal on purpose: a job's /proc/self/environ
        # shows the environment its template started with, so nothing of the runner's
        # (NATS credentials, database URLs) may be in it.
        env = {
            "PATH": f"{spec.venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PURAS_DEPLOYMENT_ID": spec.deployment_id,
            "PURAS_DEPLOYMENT_ROOT": str(spec.bundle_root),
            "PURAS_SKILL": spec.skill,
        }
        try:
            proc = await asyncio.create_subprocess_exec(
                str(spec.python),
                "-I",
                str(TEMPLATE_SCRIPT),
                json.dumps(cfg),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(spec.bundle_root),
                env=env,
                # Its own session: a Ctrl-C at the runner's terminal is the runner's to
                # handle; the template follows the runner through its socket and
                # PR_SET_PDEATHSIG instead.
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            raise TemplateError(f"could not start {spec.python}: {exc}") from exc
        finally:
            theirs.close()
        ours.setblocking(False)
        tpl = cls(key, spec, proc, ours, cgroups, egress)
        try:
            tpl._go()
            ready = await asyncio.wait_for(asyncio.shield(tpl._ready), ready_timeout)
        except TimeoutError:
            await tpl.close()
            raise TemplateError(
                f"the template did not start and import {spec.module_file} within "
                f"{ready_timeout:g}s"
            ) from None
        except BaseException:  # failed, or the start itself was cancelled: no orphan
            await tpl.close()
            raise
        tpl.import_ms = ready.import_ms
        tpl.import_error = ready.import_error
        tpl.started_ms = (time.perf_counter() - t0) * 1000
        log.info(
            "template started",
            deployment_id=spec.deployment_id,
            skill=spec.skill,
            pid=proc.pid,
            start_ms=round(tpl.started_ms, 1),
            import_ms=round(ready.import_ms, 1),
            import_error=ready.import_error,
        )
        return tpl

    def _go(self) -> None:
        """Place the template in a cgroup of its own (its import-time code is the
        project's), then let it go on: it waits for this before it runs anything."""
        if self._cgroups is not None:
            cg = self._cgroups.create("tpl")
            if cg is not None:
                self._cgroup = cg
                cg.add(self._proc.pid)
        self._sock.send(b'{"op":"go"}')  # the template's only JSON message

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return not self._closed

    # -- jobs ----------------------------------------------------------------------------

    async def run(self, payload: bytes, fds: list[int]) -> ChildHandle:
        """Give a job (its JSON, or ``b"@"`` plus a memfd as the 4th fd, and the write
        ends of its stdout, stderr and result pipes) to a waiting child."""
        # Counted before the first await: from here a retired template is not stopped
        # under this job (the pool stops one only when it is idle, see job_done).
        self.handed += 1
        while True:
            spare = await self._take_spare()
            try:
                while True:
                    try:
                        socket.send_fds(spare.sock, [payload], fds)
                        break
                    except BlockingIOError:
                        await self._writable(spare.sock)
            except OSError:
                continue  # that spare died after it was handed to us: take the next
            finally:
                spare.sock.close()
            handle = ChildHandle(
                pid=spare.pid,
                exited=self._loop.create_future(),
                fork_us=spare.fork_us,
                cgroup=spare.cgroup,
                host_pid=spare.job_pid,
                pid_is_host=self.spec.jail is None,
                egress=spare.egress,
                cgroups=self._cgroups,
            )
            self._jobs[spare.pid] = handle
            self.last_used = time.monotonic()
            self._control(TOOK, spare.pid)
            return handle

    async def _take_spare(self) -> _Spare:
        if self._closed:
            raise TemplateError("template is closed")
        if self._spares:
            return self._spares.popleft()
        waiter: asyncio.Future[_Spare] = self._loop.create_future()
        self._spare_waiters.append(waiter)
        try:
            return await waiter
        finally:
            if waiter in self._spare_waiters:
                self._spare_waiters.remove(waiter)

    def job_done(self) -> None:
        """A job handed out by :meth:`run` is over (its owner released it)."""
        self.active -= 1
        self.last_used = time.monotonic()
        if self.active == 0 and self.retired and self.on_retired_idle is not None:
            self.on_retired_idle(self)

    def kill_child(self, handle: ChildHandle) -> None:
        handle.kill()
        if not handle.exited.done():
            # Belt and braces: the template kills it too (it knows the pid is unreaped).
            self._control(KILL, handle.pid)

    def _control(self, op: bytes, pid: int) -> None:
        if self._closed:
            return
        try:
            self._sock.send(CONTROL.pack(op, pid, 0, 0.0))
        except BlockingIOError:
            # Tiny datagrams to a template that reads them at once: a full buffer means
            # it is wedged; the next run notices and the pool replaces it.
            log.warning("template control socket full", op=op.decode())
        except OSError as exc:
            self._lost(f"send failed: {exc}")

    async def _writable(self, sock: socket.socket) -> None:
        fut: asyncio.Future[None] = self._loop.create_future()
        fd = sock.fileno()

        def _ready() -> None:
            if not fut.done():
                fut.set_result(None)

        self._loop.add_writer(fd, _ready)
        try:
            await fut
        finally:
            self._loop.remove_writer(fd)

    # -- messages from the template -----------------------------------------------------

    def _on_readable(self) -> None:
        while not self._closed:
            try:
                data, ancdata, _flags, _addr = self._sock.recvmsg(65536, _FD_ANCILLARY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._lost(f"socket error: {exc}")
                return
            fds = array.array("i")
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
            if not data:
                for fd in fds:
                    os.close(fd)
                self._lost("template exited")
                return
            if len(data) != CONTROL.size:
                for fd in fds:
                    os.close(fd)
                log.error("bad message from template", data=data[:200])
                continue
            op, pid, value, number = CONTROL.unpack(data)
            self._dispatch(op, pid, value, number, list(fds))

    def _dispatch(self, op: bytes, pid: int, value: int, number: float, fds: list[int]) -> None:
        if op == SPARE and len(fds) == 1:
            sock = socket.socket(fileno=fds[0])
            sock.setblocking(False)
            spare = _Spare(pid, sock, number)
            # Usable once its process said it is ready (and was placed in its cgroup).
            self._pending.add(spare)
            self._loop.add_reader(sock.fileno(), self._on_spare_ready, spare)
            return
        for fd in fds:
            os.close(fd)
        if op == EXIT:
            h = self._jobs.pop(pid, None)
            if h is not None:
                h.finish()
                if not h.exited.done():
                    h.exited.set_result(value)
                return
            # A spare that died before it got a job: forget it.
            for spare in list(self._spares) + list(self._pending):
                if spare.pid == pid:
                    self._drop_spare(spare)
        elif op == READY and not self._ready.done():
            self._ready.set_result(_Started(import_ms=number, import_error=bool(value)))

    def _on_spare_ready(self, spare: _Spare) -> None:
        fd = spare.sock.fileno()
        try:
            data, ancdata, _flags, _addr = spare.sock.recvmsg(65536, _CRED_ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancdata = b"", []
        self._loop.remove_reader(fd)
        self._pending.discard(spare)
        job_pid = 0
        listener: socket.socket | None = None
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                job_pid = _UCRED.unpack(cdata[: _UCRED.size])[0]
            elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
                for fd in fds:
                    if listener is None:
                        listener = socket.socket(fileno=fd)
                    else:
                        os.close(fd)
        ready = data == SPARE_READY
        if listener is not None:
            if self._egress is not None and ready:
                spare.egress = self._egress.serve(listener, self.spec.project_id)
            else:
                listener.close()
        if data.startswith(SPARE_ERROR):
            self._drop_spare(spare)
            try:
                err = _decode_error(data[len(SPARE_ERROR) :])
            except msgspec.DecodeError:
                err = {"message": "(unreadable report)"}
            self._lost(
                "a job's process could not be confined: "
                f"{err.get('type', 'Error')}: {err.get('message', '')}"
            )
            return
        if not ready or not job_pid:
            self._drop_spare(spare)  # it died while setting up; the template forks another
            return
        spare.job_pid = job_pid
        # A confined template's pids are of its own namespace; only the job's process
        # (the one that matters: everything the job starts descends from it) is known
        # here by its real pid.
        spec_pids_are_host = self.spec.jail is None
        if self._cgroups is not None:
            try:
                cg = self._cgroups.acquire()
                if cg is not None:
                    spare.cgroup = cg
                    # Before it has a job: what it forks from now on is born inside.
                    # (Confined, the job's process is usually the template's own child;
                    # a waiter in between, where there is one, stays in the template's
                    # cgroup: it only waits.)
                    if spec_pids_are_host:
                        cg.add(spare.pid)
                    cg.add(job_pid)
            except OSError as exc:
                self._drop_spare(spare)
                self._lost(f"could not place a job's process in its cgroup: {exc}")
                return
        while self._spare_waiters:
            waiter = self._spare_waiters.popleft()
            if not waiter.done():
                waiter.set_result(spare)
                return
        self._spares.append(spare)

    def _drop_spare(self, spare: _Spare) -> None:
        if spare.egress is not None:
            spare.egress.close()
            spare.egress = None
        if spare in self._pending:
            self._pending.discard(spare)
            with contextlib.suppress(Exception):
                self._loop.remove_reader(spare.sock.fileno())
        if spare in self._spares:
            self._spares.remove(spare)
        spare.sock.close()
        if spare.cgroup is not None:
            spare.cgroup.kill()
            remove_cgroup(spare.cgroup)
            spare.cgroup = None

    def _lost(self, why: str) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        if not self._ready.done():
            tail = "\n".join(self._stderr_tail)
            self._ready.set_exception(
                TemplateError(
                    f"template process ended before it was ready ({why})"
                    + (f":\n{tail}" if tail else "")
                )
            )
            # Consumed by start(); mark retrieved so a late failure is not logged twice.
            self._ready.exception()
        elif self._jobs:
            log.warning(
                "template lost",
                deployment_id=self.spec.deployment_id,
                skill=self.spec.skill,
                reason=why,
                running=len(self._jobs),
            )
        for spare in list(self._spares) + list(self._pending):
            self._drop_spare(spare)
        self._spares.clear()
        err = TemplateError(f"template lost: {why}")
        for waiter in self._spare_waiters:
            if not waiter.done():
                waiter.set_exception(err)
        self._spare_waiters.clear()
        for h in self._jobs.values():
            # The template kills its children as it goes; the cgroup makes sure.
            h.finish()
            if not h.exited.done():
                h.exited.set_result(None)
        self._jobs.clear()

    async def _relay_stderr(self) -> None:
        stream = self._proc.stderr
        if stream is None:
            return
        relayed = 0
        while True:
            line = await stream.readline()
            if not line:
                return
            text = line.decode("utf-8", errors="replace").rstrip("\n")
            self._stderr_tail.append(text)
            if relayed < STDERR_LOG_LINES:
                relayed += 1
                log.warning(
                    "template stderr",
                    deployment_id=self.spec.deployment_id,
                    skill=self.spec.skill,
                    line=text[:2000],
                )

    # -- stop ----------------------------------------------------------------------------

    async def close(self, timeout: float = 5.0) -> None:
        """Stop the template: closing its socket makes it kill its children and exit."""
        self._lost("closed by the runner")
        try:
            await asyncio.wait_for(self._proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            await self._proc.wait()
        if self._cgroup is not None:
            self._cgroup.kill()
            remove_cgroup(self._cgroup)
            self._cgroup = None
        self._stderr_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._stderr_task


class TemplatePool:
    """The live templates of this runner, started on first use, stopped when idle."""

    def __init__(
        self,
        *,
        idle_s: float,
        spares: int = 2,
        cgroups: JobCgroups | None = None,
        egress: EgressProxy | None = None,
    ) -> None:
        self._idle_s = idle_s
        self._spares = spares
        self.cgroups = cgroups
        self.egress = egress
        self._live: dict[TemplateKey, TemplateProcess] = {}
        self._starting: dict[TemplateKey, asyncio.Task[TemplateProcess]] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._newest: dict[str, tuple[datetime, str]] = {}
        """Per project: when its newest job seen was created, and its deployment. Jobs
        are pinned to the deployment active when they were submitted, so that one was
        active then, and any other deployment's templates serve stragglers at most."""
        self._stopping: set[asyncio.Task[None]] = set()

    def start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_idle())

    def get_live(self, key: TemplateKey) -> TemplateProcess | None:
        tpl = self._live.get(key)
        return tpl if tpl is not None and tpl.alive else None

    async def get(
        self, key: TemplateKey, spec: TemplateSpec, *, ready_timeout: float
    ) -> TemplateProcess:
        tpl = self.get_live(key)
        if tpl is not None:
            return tpl
        task = self._starting.get(key)
        if task is None:
            task = asyncio.create_task(self._start(key, spec, ready_timeout))
            self._starting[key] = task
            task.add_done_callback(lambda _t: self._starting.pop(key, None))
        return await asyncio.shield(task)

    async def _start(
        self, key: TemplateKey, spec: TemplateSpec, ready_timeout: float
    ) -> TemplateProcess:
        old = self._live.pop(key, None)
        if old is not None:
            await old.close()
        tpl = await TemplateProcess.start(
            key,
            spec,
            ready_timeout=ready_timeout,
            spares=self._spares,
            cgroups=self.cgroups,
            egress=self.egress,
        )
        tpl.on_retired_idle = self._stop_retired
        newest = self._newest.get(spec.project_id)
        # Started for a job submitted before its project switched deployments: it runs
        # that job (and any other such) and stops when they are done.
        tpl.retired = newest is not None and newest[1] != spec.deployment_id
        self._live[key] = tpl
        return tpl

    def job_arrived(self, project_id: str, deployment_id: str, created_at: datetime) -> None:
        """A job of ``project_id`` pinned to ``deployment_id``: if it is newer than every
        job seen so far and of another deployment than the newest one, the project
        activated that deployment meanwhile, and the templates of its other deployments
        retire (they stop once none of their jobs runs). No I/O: the activation is read
        off the jobs themselves."""
        newest = self._newest.get(project_id)
        if newest is not None and created_at < newest[0]:
            return  # submitted before the newest one: tells nothing new
        self._newest[project_id] = (created_at, deployment_id)
        if newest is None or newest[1] == deployment_id:
            return
        for tpl in list(self._live.values()):
            spec = tpl.spec
            if spec.project_id == project_id and spec.deployment_id != deployment_id:
                tpl.retired = True
                # One that has not had its first job yet was started for a job on its
                # way to it (see run): that job's end stops it.
                if tpl.active == 0 and tpl.handed:
                    self._stop_retired(tpl)

    def _stop_retired(self, tpl: TemplateProcess) -> None:
        if self._live.get(tpl.key) is not tpl:
            return
        del self._live[tpl.key]
        log.info(
            "stopping the template of an inactive deployment",
            deployment_id=tpl.key[0],
            skill=tpl.key[1],
        )
        # Closed now, not when the task first runs: nothing is handed to it any more.
        tpl._lost("its deployment is no longer active")
        task = asyncio.create_task(tpl.close())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def live(self) -> list[TemplateProcess]:
        return [t for t in self._live.values() if t.alive]

    async def _reap_idle(self) -> None:
        period = max(0.05, min(self._idle_s / 2, 30.0))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for key, tpl in list(self._live.items()):
                if not tpl.alive:
                    self._live.pop(key, None)
                    with contextlib.suppress(Exception):
                        await tpl.close()
                elif tpl.active == 0 and now - tpl.last_used >= self._idle_s:
                    self._live.pop(key, None)
                    log.info("stopping idle template", deployment_id=key[0], skill=key[1])
                    await tpl.close()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        starting = list(self._starting.values())
        for task in starting:
            task.cancel()
        # A start cancelled midway closes what it had spawned; wait for that.
        await asyncio.gather(*starting, return_exceptions=True)
        templates = list(self._live.values())
        self._live.clear()
        await asyncio.gather(*(t.close() for t in templates), return_exceptions=True)
        await asyncio.gather(*self._stopping, return_exceptions=True)
