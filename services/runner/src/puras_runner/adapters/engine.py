"""The deterministic engine's processes: a skill's venv and template, a job's workdir
and process.

:meth:`TemplateEngine.prepare` makes sure the skill of a deployment already on disk
(the shared bundle cache) has its venv (the shared venv cache) and template (cached
after the first job); :meth:`TemplateEngine.start` creates the job's workdir and pipes
and hands the job to the warm template's waiting child; the returned
:class:`Execution` reads the child's output live, enforces the wall-clock limit by
killing the job's process group, and gathers the facts the domain turns into an outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec

from puras_common.events.commands import RunJob
from puras_common.events.types import SkillRecord
from puras_common.logging import get_logger
from puras_runner import jail
from puras_runner.adapters.sandbox import Sandbox
from puras_runner.adapters.templates import (
    ChildHandle,
    TemplateError,
    TemplateKey,
    TemplatePool,
    TemplateProcess,
    TemplateSpec,
)
from puras_runner.adapters.venvs import Venv, VenvBuilder, VenvBuildFailed
from puras_runner.adapters.workdir import Workdirs
from puras_runner.app.ports import Deployment
from puras_runner.domain.errors import PreparationFailed
from puras_runner.domain.jobs import cpu_limits, job_env, process_limits
from puras_runner.domain.logs import Stream
from puras_runner.domain.outcome import (
    BadReturn,
    ChildReport,
    ExitStatus,
    ImportFailed,
    Raised,
    Returned,
    RunFacts,
    TooLarge,
)

__all__ = [
    "TOOL_HOST_SCRIPT",
    "Channel",
    "Execution",
    "PreparationFailed",
    "PreparedSkill",
    "TemplateEngine",
]

log = get_logger(__name__)

OUTPUT_GRACE_S: Final = 1.0
"""After the job's process is done, how long its output pipes may stay open (something
it started still writing) before the group is killed and the pipes closed."""
EXIT_GRACE_S: Final = 10.0
"""How long to wait for the template to report a killed or finished child's exit."""
REPORT_SLACK_BYTES: Final = 64 * 1024
"""Result-pipe bytes read beyond ``max_result_bytes`` (an error report with its
traceback, the JSON envelope) before the child is cut off."""
_OK_ENVELOPE_BYTES: Final = len(b'{"kind":"ok","result":}')
TEMPLATE_START_MIN_S: Final = 60.0
"""The least time a template gets to start and import the skill, whatever the job's
timeout (a loaded machine can take a second to start a confined interpreter)."""
INLINE_JOB_BYTES: Final = 48 * 1024
"""Jobs up to this size travel in the hand-off datagram; larger ones in a memfd (a
datagram is limited by the socket buffer, ~200 KiB by default)."""
_READ_CHUNK: Final = 64 * 1024

OutputSink = Callable[[Stream, bytes], None]

TOOL_HOST_SCRIPT: Final = Path(__file__).resolve().parent.parent / "tool_host.py"
"""An agentic skill's template runs this instead of a function of the skill's."""


@dataclass(frozen=True, slots=True)
class Channel:
    """What an agent run's job gets on top of a deterministic job's (see ``tool_host``)."""

    fd: int
    """The job's end of its channel to the runner (the caller's to close once the job
    was handed over, or failed to be)."""
    inputs: dict[str, Any]
    """The job's ``inputs`` (the tool host's own settings, not the run's inputs)."""
    env: dict[str, str]
    """Variables added to (or replacing) the job's environment."""


@dataclass(frozen=True, slots=True)
class PreparedSkill:
    deployment: Deployment
    spec: SkillRecord
    venv: Venv
    template: TemplateSpec

    @property
    def key(self) -> TemplateKey:
        return (self.deployment.id, self.spec.name)


# -- the child's report -------------------------------------------------------------------


class _Ok(msgspec.Struct, tag="ok", tag_field="kind"):
    result: Any


class _Exception(msgspec.Struct, tag="exception", tag_field="kind"):
    type: str
    message: str = ""
    traceback: str = ""


class _ImportError(msgspec.Struct, tag="import_error", tag_field="kind"):
    type: str
    module_file: str = ""
    message: str = ""
    traceback: str = ""


class _BadReturn(msgspec.Struct, tag="bad_return", tag_field="kind"):
    message: str


class _TooLarge(msgspec.Struct, tag="too_large", tag_field="kind"):
    size: int


_decode_report = msgspec.json.Decoder(_Ok | _Exception | _ImportError | _BadReturn | _TooLarge)


def decode_report(raw: bytes) -> ChildReport | None:
    """The domain's view of what the child wrote (``None``: nothing usable)."""
    if not raw:
        return None
    try:
        msg = _decode_report.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        # RecursionError: a result nested deeper than the decoder goes (the child's
        # encoder went further); the job then fails as one that reported nothing usable.
        return None
    if isinstance(msg, _Ok):
        return Returned(msg.result, max(0, len(raw) - _OK_ENVELOPE_BYTES))
    if isinstance(msg, _Exception):
        return Raised(msg.type, msg.message, msg.traceback)
    if isinstance(msg, _ImportError):
        return ImportFailed(msg.module_file, msg.type, msg.message, msg.traceback)
    if isinstance(msg, _BadReturn):
        return BadReturn(msg.message)
    return TooLarge(msg.size)


# -- one running job ---------------------------------------------------------------------


class Execution:
    """A job's process as the runner sees it: its output, its result, its end."""

    def __init__(
        self,
        *,
        template: TemplateProcess,
        handle: ChildHandle,
        workdir: Path | None,
        workdirs: Workdirs,
        stdout_r: int,
        stderr_r: int,
        result_r: int,
        on_output: OutputSink,
        result_cap: int,
        project_id: str,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._project_id = project_id
        self._template = template
        self.handle = handle
        self.workdir = workdir
        self._workdirs = workdirs
        self._on_output = on_output
        self._result_cap = result_cap
        self._result = bytearray()
        self._overflow = 0
        self._closed = False
        self._fds: dict[int, asyncio.Future[None]] = {}
        self._eof_out = self._watch(stdout_r, "stdout")
        self._eof_err = self._watch(stderr_r, "stderr")
        self._eof_result = self._watch(result_r, None)

    def _watch(self, fd: int, stream: Stream | None) -> asyncio.Future[None]:
        os.set_blocking(fd, False)
        fut: asyncio.Future[None] = self._loop.create_future()
        self._fds[fd] = fut
        if stream is None:
            self._loop.add_reader(fd, self._read_result, fd)
        else:
            self._loop.add_reader(fd, self._read_output, fd, stream)
        return fut

    def _done(self, fd: int) -> None:
        fut = self._fds.pop(fd, None)
        if fut is None:
            return
        self._loop.remove_reader(fd)
        os.close(fd)
        if not fut.done():
            fut.set_result(None)

    def _read_output(self, fd: int, stream: Stream) -> None:
        try:
            data = os.read(fd, _READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._on_output(stream, data)
        else:
            self._done(fd)

    def _read_result(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._done(fd)
            return
        if len(self._result) + len(data) > self._result_cap:
            # Stop reading: the child blocks or gets EPIPE, and is killed right away.
            self._overflow = len(self._result) + len(data)
            self._result.clear()
            self._done(fd)
            self.kill()
            return
        self._result += data

    def _read_result_now(self) -> None:
        fd = next((fd for fd, fut in self._fds.items() if fut is self._eof_result), None)
        while fd is not None and fd in self._fds and not self._overflow:
            try:
                data = os.read(fd, _READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
            if not data:
                self._done(fd)
                return
            self._result += data
            if len(self._result) > self._result_cap:
                self._overflow = len(self._result)
                self._result.clear()
                self._done(fd)

    def kill(self) -> None:
        """SIGKILL the job's process group."""
        self._template.kill_child(self.handle)

    async def wait(self, timeout_s: float) -> RunFacts:
        """Until the job's process is done (or killed at ``timeout_s``): the facts."""
        timed_out = False
        report: ChildReport | None = None
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.wait(
                    (self._eof_result, self.handle.exited), return_when=asyncio.FIRST_COMPLETED
                )
                if self._eof_result.done():
                    report = decode_report(bytes(self._result))
                if report is None and not self._overflow:
                    # Nothing (usable) reported yet: wait for the process to end. What it
                    # wrote before it exited is in the pipe even if something it started
                    # still holds the pipe open, so read that without waiting for EOF.
                    await asyncio.shield(self.handle.exited)
                    self._read_result_now()
                    report = decode_report(bytes(self._result))
        except TimeoutError:
            timed_out = True
            self.kill()
        await self._drain_output()
        status: int | None = None
        if self.handle.exited.done():
            status = self.handle.exited.result()
        elif report is None:
            with contextlib.suppress(TimeoutError):
                status = await asyncio.wait_for(asyncio.shield(self.handle.exited), EXIT_GRACE_S)
        usage = self.handle.usage
        if usage is None and self.handle.cgroup is not None and not isinstance(report, Returned):
            # Only a failure needs the counters (its error then names the limit it hit).
            usage = self.handle.cgroup.usage()
        return RunFacts(
            report=None if timed_out else report,
            exit=ExitStatus.from_wait_status(status) if status is not None else None,
            timed_out=timed_out,
            result_overflow=self._overflow,
            oom_killed=usage is not None and usage.oom_killed,
            pids_exhausted=usage is not None and usage.pids_refused,
        )

    async def _drain_output(self) -> None:
        pending = {f for f in (self._eof_out, self._eof_err, self._eof_result) if not f.done()}
        if not pending:
            return
        _, pending = await asyncio.wait(pending, timeout=OUTPUT_GRACE_S)
        if pending:
            # Something the job started still holds its output: end the group.
            self.kill()
            _, pending = await asyncio.wait(pending, timeout=OUTPUT_GRACE_S)
        if pending:
            # Only a process that left the job's session can still hold them; stop
            # listening (see docs/runner.md: what isolation does not give).
            log.warning("job output still open after its process ended; closing it")
            for fd in list(self._fds):
                self._done(fd)

    async def close(self) -> None:
        """Teardown: the process is gone (killed if need be), the workdir removed."""
        if self._closed:
            return
        self._closed = True
        try:
            if not self.handle.exited.done():
                try:
                    await asyncio.wait_for(asyncio.shield(self.handle.exited), EXIT_GRACE_S)
                except TimeoutError:
                    self.kill()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self.handle.exited), EXIT_GRACE_S)
            for fd in list(self._fds):
                self._done(fd)
        finally:
            self._template.job_done()
            if self.workdir is not None:
                await asyncio.to_thread(self._workdirs.release, self.workdir, self._project_id)


# -- the engine ----------------------------------------------------------------------------


class TemplateEngine:
    """:class:`~puras_runner.app.ports.ProcessEngine` over warm templates (one per skill)."""

    def __init__(
        self,
        *,
        venvs: VenvBuilder,
        templates: TemplatePool,
        workdirs: Workdirs,
        memory_limit_mb: int,
        max_result_bytes: int,
        sandbox: Sandbox | None = None,
        allow_networks: Sequence[str] = (),
    ) -> None:
        self.venvs = venvs
        self.templates = templates
        self.workdirs = workdirs
        self.memory_limit_mb = memory_limit_mb
        self.max_result_bytes = max_result_bytes
        self.sandbox = sandbox
        """``None``: jobs run unconfined (a development setting only)."""
        self.allow_networks = tuple(allow_networks)
        """Non-public networks the SDK's own fetch may reach (``egress_allow_networks``)."""
        self._prepared: dict[TemplateKey, PreparedSkill] = {}

    async def close(self) -> None:
        """Stop every template (and so every job's process) and drop kept workdirs."""
        await self.templates.close()
        if self.templates.cgroups is not None:
            self.templates.cgroups.drain()
        await asyncio.to_thread(self.workdirs.close)

    def lookup(self, deployment_id: str, skill: str) -> PreparedSkill | None:
        return self._prepared.get((deployment_id, skill))

    async def prepare(
        self, deployment: Deployment, spec: SkillRecord, job: RunJob
    ) -> PreparedSkill:
        """The skill's venv (cached per ``requirements.txt``) and template spec (cached
        per skill)."""
        prepared = self._prepared.get((deployment.id, spec.name))
        if prepared is not None:
            return prepared
        try:
            venv = await self.venvs.ensure(deployment.root, job.project_id)
        except VenvBuildFailed as exc:
            raise PreparationFailed(str(exc)) from None
        cgroups = self.templates.cgroups
        prepared = prepare_skill(
            deployment,
            spec,
            venv,
            memory_limit_mb=self.memory_limit_mb,
            per_job_cgroups=cgroups is not None and cgroups.enabled,
            jail_spec=self._jail_spec(job.project_id, venv, deployment, spec),
            project_id=job.project_id,
        )
        self._prepared[prepared.key] = prepared
        return prepared

    def _jail_spec(
        self, project_id: str, venv: Venv, deployment: Deployment, spec: SkillRecord
    ) -> dict[str, Any] | None:
        if self.sandbox is None:
            return None
        return self.sandbox.jail_config(
            project_id=project_id,
            deployment_id=deployment.id,
            skill=spec.name,
            venv_dir=venv.path,
            bundle_root=deployment.root,
            python=venv.python,
            tool_host=TOOL_HOST_SCRIPT if spec.kind == "agentic" else None,
        )

    async def start(
        self,
        prepared: PreparedSkill,
        job: RunJob,
        *,
        attempt: int,
        timeout_s: float,
        secrets: Mapping[str, str],
        on_output: OutputSink,
        channel: Channel | None = None,
    ) -> Execution:
        """Hand the job to its template's waiting child; the job is running on return.

        With ``channel`` (an agent run: see ``tool_host``) the job gets the channel's fd,
        inputs and environment instead of the work item's inputs."""
        self.templates.job_arrived(job.project_id, job.deployment_id, job.created_at)
        template = await self._template(prepared, timeout_s)
        workdir: Path | None = None
        venv_bin, bundle_root = str(prepared.venv.bin), str(prepared.deployment.root)
        if prepared.template.jail is not None:
            # The job's process mounts a private tmpfs there itself: nothing to make or
            # clean on the host, and no other job can see it.
            cwd, tmpdir = jail.JOB_HOME, "/tmp"
            venv_bin, bundle_root = f"{jail.VENV}/bin", jail.BUNDLE
        else:
            # Usually one rename (see Workdirs): cheaper inline than in a thread.
            try:
                workdir = self.workdirs.create(job.job_id, attempt, job.project_id)
            except OSError as exc:
                raise PreparationFailed(
                    f"could not create the job's working directory: {exc}"
                ) from None
            cwd, tmpdir = str(workdir), f"{workdir}/tmp"
        env = job_env(
            job,
            attempt=attempt,
            venv_bin=venv_bin,
            workdir=cwd,
            tmpdir=tmpdir,
            bundle_root=bundle_root,
            secrets=secrets,
            allow_networks=self.allow_networks,
        )
        if prepared.template.jail is not None and self.sandbox is not None:
            env.update(self.sandbox.job_env())
        cpu_soft, cpu_hard = cpu_limits(timeout_s)
        doc: dict[str, Any] = {
            "inputs": job.inputs,
            "env": env,
            "cwd": cwd,
            "cpu_soft_s": cpu_soft,
            "cpu_hard_s": cpu_hard,
            "max_result_bytes": self.max_result_bytes,
        }
        if channel is not None:
            env.update(channel.env)
            doc["inputs"] = channel.inputs
            doc["channel"] = True
        try:
            return await self.start_in(
                template,
                workdir,
                on_output,
                doc,
                project_id=job.project_id,
                prepared=prepared,
                timeout_s=timeout_s,
                channel_fd=None if channel is None else channel.fd,
            )
        except BaseException:
            if workdir is not None:
                await asyncio.to_thread(self.workdirs.release, workdir, job.project_id)
            raise

    async def start_in(
        self,
        template: TemplateProcess,
        workdir: Path | None,
        on_output: OutputSink,
        job_doc: dict[str, Any],
        *,
        project_id: str,
        prepared: PreparedSkill | None = None,
        timeout_s: float = 60.0,
        channel_fd: int | None = None,
    ) -> Execution:
        """Hand ``job_doc`` (see ``template_main``) to ``template``; retried once on a fresh
        template if this one went away (``prepared`` says how to start it). A
        ``channel_fd`` goes with the job as its last fd (the caller closes it)."""
        payload = msgspec.json.encode(job_doc)
        pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
        (out_r, out_w), (err_r, err_w), (res_r, res_w) = pipes
        mine = [out_r, err_r, res_r]
        theirs = [out_w, err_w, res_w]
        extra = [] if channel_fd is None else [channel_fd]
        try:
            if len(payload) > INLINE_JOB_BYTES:
                # Too large for one datagram: the child reads it from a memfd.
                job_fd = os.memfd_create("puras-job", os.MFD_CLOEXEC)
                theirs.append(job_fd)
                view = memoryview(payload)
                while view:
                    view = view[os.write(job_fd, view) :]
                os.lseek(job_fd, 0, os.SEEK_SET)
                payload = b"@"
            for attempt in range(2):
                try:
                    handle = await template.run(payload, theirs + extra)
                    break
                except TemplateError as exc:
                    if attempt or prepared is None:
                        raise PreparationFailed(
                            f"could not start the skill's process: {exc}"
                        ) from None
                    template = await self._template(prepared, timeout_s)
        except BaseException:
            for fd in mine:
                os.close(fd)
            raise
        finally:
            # Ours to close in every case: the child has its own copies now.
            for fd in theirs:
                os.close(fd)
        template.active += 1
        return Execution(
            template=template,
            handle=handle,
            workdir=workdir,
            workdirs=self.workdirs,
            stdout_r=out_r,
            stderr_r=err_r,
            result_r=res_r,
            on_output=on_output,
            result_cap=self.max_result_bytes + REPORT_SLACK_BYTES,
            project_id=project_id,
        )

    async def _template(self, prepared: PreparedSkill, timeout_s: float) -> TemplateProcess:
        tpl = self.templates.get_live(prepared.key)
        if tpl is not None:
            return tpl
        try:
            return await self.templates.get(
                prepared.key,
                prepared.template,
                # The job's own clock starts once it runs; starting the template (a jail,
                # an interpreter, the skill's imports) gets at least this much.
                ready_timeout=max(timeout_s, TEMPLATE_START_MIN_S),
            )
        except TemplateError as exc:
            raise PreparationFailed(
                f"could not start the skill's template process: {exc}"
            ) from None


def prepare_skill(
    deployment: Deployment,
    spec: SkillRecord,
    venv: Venv,
    *,
    memory_limit_mb: int,
    per_job_cgroups: bool = False,
    jail_spec: dict[str, Any] | None = None,
    project_id: str = "",
) -> PreparedSkill:
    skill_dir = deployment.root / "skills" / spec.name
    if spec.kind == "agentic":
        # The run's process is the runtime's tool host (an absolute path wins over
        # skill_dir in template_main); confined, the jail shows it under RUNTIME.
        module_file = (
            f"{jail.RUNTIME}/{TOOL_HOST_SCRIPT.name}"
            if jail_spec is not None
            else str(TOOL_HOST_SCRIPT)
        )
        function = "run"
    else:
        # A deterministic skill's entrypoint is ``file.py:function`` (checked at deploy).
        module_file, function = spec.entrypoint.split(":", 1)
    limits = dataclasses.asdict(process_limits(memory_limit_mb=memory_limit_mb))
    if per_job_cgroups:
        # The cgroup counts memory and processes for the job as a whole; an address-space
        # limit would only break programs that reserve more than they use (JITs, many
        # threads), and RLIMIT_NPROC counts every process of the project's uid.
        limits["memory_bytes"] = 0
        limits["processes"] = 0
    return PreparedSkill(
        deployment=deployment,
        spec=spec,
        venv=venv,
        template=TemplateSpec(
            python=venv.python,
            venv_bin=venv.bin,
            bundle_root=deployment.root,
            skill_dir=skill_dir,
            module_file=module_file,
            function=function,
            deployment_id=deployment.id,
            skill=spec.name,
            limits=limits,
            project_id=project_id,
            jail=jail_spec,
        ),
    )
