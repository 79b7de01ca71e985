"""A warm template process for one (deployment, skill): imports the skill once, forks a
fresh child per job (ARCHITECTURE §5, §5a).

Executed BY PATH with the deployment venv's interpreter (``python -I template_main.py
<config-json>``). It must import nothing but the standard library: it runs inside a
user's virtualenv, where neither ``puras_runner`` nor any server library exists.

Protocol with the runner over the control socket (``SOCK_SEQPACKET``; the config names
its fd). After the runner's one ``{"op":"go"}``, every message is one fixed-size
datagram, :data:`CONTROL` (an op byte, a pid, an integer and a float: no JSON to encode
or parse for each job):

* template -> runner ``READY`` (pid, import_error as 0/1, import_ms) once the skill's
  module was imported (or failed to: then every job reports that failure).
* template -> runner ``SPARE`` (pid, 0, fork_us) with one fd attached (SCM_RIGHTS): the
  runner's end of a socket straight to a child that is forked, set up and waiting for a
  job; the child says ``b"ready"`` on it once it is (or ``b"error"`` and a JSON
  description of why it could not be confined). The template keeps ``spares`` of them
  handed out ahead of need, so a job never waits for a fork, and it is not on a job's
  path at all: the runner gives the job to the child itself.
* runner -> spare (on that socket): the job, one datagram: its JSON (``inputs``, ``env``,
  ``cwd``, ``cpu_soft_s``, ``cpu_hard_s``, ``max_result_bytes``) with the write ends of
  its stdout, stderr and result pipes attached; or, for a job too large for a datagram,
  ``b"@"`` with a fourth fd, a memfd holding the JSON. A job whose JSON says
  ``"channel": true`` (an agent run's) has one more fd, last: a stream socket to the
  runner, moved to fd 4 (``CHANNEL_FD``) and named to the function as
  ``inputs["channel_fd"]``.
* runner -> template ``TOOK`` (pid): that spare has a job; fork another.
* template -> runner ``EXIT`` (pid, status) when any child ends (a raw wait status).
  The child's process group was killed before it was reaped, so nothing a job started
  outlives it, and its pid cannot be reused while the runner could still use it.
* runner -> template ``KILL`` (pid): kill that child's process group now.
* EOF on the control socket (the runner closed it or died), or SIGTERM (sent by
  PR_SET_PDEATHSIG when the runner dies): kill every child's process group and exit.

A child runs exactly one job. It reports on its result pipe (fd 3) one JSON object whose
``kind`` is ``ok`` (``result``), ``exception`` / ``import_error`` (``type``,
``message``, ``traceback``), ``bad_return`` (``message``) or ``too_large`` (``size``).
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import gc
import importlib.util
import json
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1
RESULT_FD = 3
CHANNEL_FD = 4
"""Where a job with a channel (an agent run's, see ``tool_host``) finds it."""
JOB_BUFSIZE = 65536
TRACEBACK_MAX_LINES = 200
MESSAGE_MAX_CHARS = 4000
RAPID_DEATHS = 5
"""Spares that die without a job, in a row, before refills slow to one per 100 ms."""
CONTROL = struct.Struct("=ciid")
"""A control message: op, pid, an integer (a wait status, a flag), a float (µs, ms)."""
READY, SPARE, EXIT, TOOK, KILL = b"R", b"S", b"X", b"T", b"K"
SPARE_READY = b"ready"
"""What a spare says on its own socket once it waits for a job."""
SPARE_ERROR = b"error"
"""...or, followed by a JSON description, why it could not be confined."""

_libc = ctypes.CDLL(None, use_errno=True)


def _set_parent_death_signal(sig: int) -> None:
    if _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _type_name(exc_type: type) -> str:
    module = getattr(exc_type, "__module__", "builtins")
    name = getattr(exc_type, "__qualname__", exc_type.__name__)
    return name if module in ("builtins", "__main__") else f"{module}.{name}"


def _describe(exc: BaseException, *, skip_frames: int = 0, from_root: str = "") -> dict[str, Any]:
    """Type, message and traceback of ``exc``. The traceback leaves out the first
    ``skip_frames`` frames (the template's call into user code) and, with ``from_root``,
    every leading frame outside that directory (importlib's machinery at import time)."""
    try:
        message = str(exc)
    except Exception:  # a broken __str__ must not hide the exception itself
        message = f"<unprintable {type(exc).__name__}>"
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None:
            tb = tb.tb_next
    if from_root:
        while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(from_root):
            tb = tb.tb_next
    try:
        lines = "".join(traceback.format_exception(type(exc), exc, tb)).splitlines()
    except Exception:
        lines = []
    text = "\n".join(lines[-TRACEBACK_MAX_LINES:])
    if _SHOWN_ROOT:
        # Paths relative to the bundle (skills/x/main.py): what the author knows, and no
        # layout of the runner's disk in an error the API shows.
        text = text.replace(_SHOWN_ROOT, "")
    return {
        "type": _type_name(type(exc)),
        "message": message[:MESSAGE_MAX_CHARS],
        "traceback": text,
    }


_SHOWN_ROOT = ""
"""The bundle root plus a separator, stripped from tracebacks (set once at start)."""


def _recv_fds(
    sock: socket.socket, bufsize: int, maxfds: int, flags: int = 0
) -> tuple[bytes, list[int]]:
    """``socket.recv_fds`` with ``flags`` honoured (3.11's ignores them) and the fds
    received close-on-exec."""
    fds = array.array("i")
    msg, ancdata, _flags, _addr = sock.recvmsg(
        bufsize, socket.CMSG_LEN(maxfds * fds.itemsize), flags | socket.MSG_CMSG_CLOEXEC
    )
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return msg, list(fds)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _limit(res: int, soft: int, hard: int) -> None:
    """Lower a limit; never try to raise one above the hard limit we were given."""
    _, cur_hard = resource.getrlimit(res)
    if cur_hard != resource.RLIM_INFINITY:
        hard = min(hard, cur_hard)
        soft = min(soft, hard)
    resource.setrlimit(res, (soft, hard))


def _encode_result(value: object) -> bytes:
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()


class Template:
    def __init__(self, cfg: dict[str, Any], sock: socket.socket) -> None:
        self.cfg = cfg
        self.sock = sock
        self.pid = os.getpid()
        self.func: Callable[[dict[str, Any]], object] | None = None
        self.import_error: dict[str, Any] | None = None
        self.target = max(1, int(cfg.get("spares", 1)))
        self.children: set[int] = set()
        """Every child not reaped yet (spares and jobs)."""
        self.spares: set[int] = set()
        """Children handed to the runner as spares and not yet taken."""
        self.alive: dict[int, int] = {}
        """Write end of the pipe each cloned child watches for its parent (see
        ``jail.clone_job``), closed once the child is reaped."""
        self.uid, self.gid = os.getuid(), os.getgid()
        self.rapid_deaths = 0
        self.refill_at = 0.0
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel = selectors.DefaultSelector()

    # -- start ------------------------------------------------------------------------

    def load(self) -> None:
        """Import the skill's module: before any fork, so every child starts warm."""
        cfg = self.cfg
        path = os.path.join(cfg["skill_dir"], cfg["module_file"])
        stem = os.path.splitext(os.path.basename(path))[0]
        # The module is importable under its file name, as its sibling modules expect,
        # unless that would replace a module already loaded (a skill file ``json.py``).
        name = stem if stem not in sys.modules else f"_puras_skill_{stem}"
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {cfg['module_file']!r} as a Python module")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            func = getattr(module, cfg["function"], None)
            if func is None:
                raise AttributeError(f"{cfg['module_file']} has no function {cfg['function']!r}")
            if not callable(func):
                raise TypeError(f"{cfg['module_file']}:{cfg['function']} is not callable")
            self.func = func
        except BaseException as exc:  # anything at import time fails the jobs, not us
            self.import_error = {
                "module_file": cfg["module_file"],
                **_describe(exc, from_root=cfg["bundle_root"] + os.sep),
            }
        # Output printed at import time must not be inherited by (and repeated in) jobs.
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        # Objects alive now are shared copy-on-write with every child; keeping the
        # collector off them keeps those pages shared (and forks cheaper).
        gc.collect()
        gc.freeze()

    def serve(self) -> None:
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.sel.register(self.sock, selectors.EVENT_READ)
        self.sel.register(self.wake_r, selectors.EVENT_READ)
        self.send(
            READY, self.pid, self.import_error is not None, float(self.cfg.get("import_ms", 0))
        )
        while not self.stopping:
            self._refill()
            timeout = None
            if self.refill_at > time.monotonic():
                timeout = self.refill_at - time.monotonic()
            for key, _ in self.sel.select(timeout):
                if key.fileobj is self.sock:
                    self._on_runner()
                else:
                    self._on_wake()
        self._shutdown()

    def _on_term(self, *_: object) -> None:
        self.stopping = True

    def send(
        self, op: bytes, pid: int, value: int = 0, number: float = 0.0, fds: list[int] | None = None
    ) -> None:
        msg = CONTROL.pack(op, pid, value, number)
        try:
            if fds:
                socket.send_fds(self.sock, [msg], fds)
            else:
                self.sock.send(msg)
        except OSError:
            # The runner is gone (EPIPE/ECONNRESET): nothing more to do for anyone.
            self.stopping = True

    # -- the runner's requests -------------------------------------------------------------

    def _on_runner(self) -> None:
        while not self.stopping:
            try:
                data, fds = _recv_fds(self.sock, 4096, 4, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.stopping = True
                return
            for fd in fds:  # nothing the runner sends us carries fds
                os.close(fd)
            if not data:
                self.stopping = True
                return
            if len(data) != CONTROL.size:
                continue
            op, pid, _, _ = CONTROL.unpack(data)
            if op == TOOK:
                self.spares.discard(pid)
                self.rapid_deaths = 0
            elif op == KILL:
                self._kill(pid)

    def _kill(self, pid: int) -> None:
        # Only a child not reaped yet: its pid (and process group id) cannot have been
        # reused, so this never hits an unrelated process.
        if pid in self.children:
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(OSError):
                    kill(pid, signal.SIGKILL)

    # -- children ----------------------------------------------------------------------------

    def _on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while os.read(self.wake_r, 512):
                pass
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            pid = info.si_pid
            # Still a zombie (WNOWAIT), so its group id is still its own: end whatever
            # the job left running in its session, then reap.
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                continue
            self.children.discard(pid)
            alive_w = self.alive.pop(pid, -1)
            if alive_w >= 0:
                os.close(alive_w)
            if pid in self.spares:
                self.spares.discard(pid)
                self.rapid_deaths += 1
                if self.rapid_deaths > RAPID_DEATHS:
                    self.refill_at = time.monotonic() + 0.1
            self.send(EXIT, pid, status)

    def _refill(self) -> None:
        # Refill to the target only while no job runs: a fork and a fresh child's set-up
        # take CPU a running job (on a small machine) would feel. With jobs running, one
        # spare is enough to keep a next job from waiting; the rest follows when they end.
        while (
            not self.stopping
            and len(self.spares) < (self.target if self.children <= self.spares else 1)
            and time.monotonic() >= self.refill_at
        ):
            self._fork_spare()
            if self.rapid_deaths > RAPID_DEATHS:
                self.refill_at = time.monotonic() + 0.1

    def _fork_spare(self) -> None:
        runner_end, spare_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Every datagram the job's process sends on its socket then carries its pid as
        # the runner sees it (SCM_CREDENTIALS): in a jail the job is pid 1 of its own
        # namespace, and the runner needs its real pid to place it in its cgroup.
        runner_end.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        t0 = time.perf_counter()
        pid, alive = self._spawn()
        if pid == 0:  # pragma: no cover - runs in the child
            # The child never returns into the template's loop, whatever happens.
            try:
                runner_end.close()
                self._child(spare_end, alive)
            finally:
                os._exit(70)
        fork_us = (time.perf_counter() - t0) * 1e6
        spare_end.close()
        if alive >= 0:
            self.alive[pid] = alive
        self.children.add(pid)
        self.spares.add(pid)
        self.send(SPARE, pid, 0, fork_us, [runner_end.fileno()])
        runner_end.close()

    def _spawn(self) -> tuple[int, int]:
        """A new child: ``(pid, alive_w)`` here, ``(0, alive_r)`` in the child when it
        was cloned into the job's namespaces at once (``alive`` is -1 for a plain fork,
        whose child enters them itself)."""
        if self.cfg.get("jail") is not None and _JAIL.can_clone_job():
            with contextlib.suppress(OSError):
                pid, alive = _JAIL.clone_job()
                return int(pid), int(alive)
            # Refused (a namespace limit, say): the forked child finds out why by itself
            # and reports it on its socket.
        return os.fork(), -1

    def _shutdown(self) -> None:
        for pid in list(self.children):
            for kill in (os.killpg, os.kill):
                with contextlib.suppress(OSError):
                    kill(pid, signal.SIGKILL)
        # No reaping: we exit now and init (or the subreaper) reaps what we killed.
        os._exit(0)

    # -- in the child ------------------------------------------------------------------------

    def _child(self, conn: socket.socket, alive_r: int) -> None:
        cloned = alive_r >= 0
        # The cloned siblings' parent-alive pipes: only the template may hold those open.
        for fd in self.alive.values():
            os.close(fd)
        if not cloned:
            # Die with the template; and if it is already gone, do not wait for a job.
            # (A cloned child does the same in its jail, by its pipe.)
            _set_parent_death_signal(signal.SIGKILL)
            if os.getppid() != self.pid:
                os._exit(0)
        # Nothing of the template's may reach user code: above all not the control
        # socket (a job could forge messages on it).
        self.sock.close()
        signal.set_wakeup_fd(-1)
        self.sel.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # Own session: this pid is the job's process group, killed as a whole.
        os.setsid()
        jail_cfg = self.cfg.get("jail")
        if jail_cfg is not None:
            try:
                if cloned:
                    _JAIL.enter_cloned_job_jail(jail_cfg["job"], self.uid, self.gid, alive_r)
                    job_pid = 0
                else:
                    job_pid = _JAIL.enter_job_jail(jail_cfg["job"])
            except BaseException as exc:
                # Never run the job unconfined: report why, and end.
                with contextlib.suppress(OSError):
                    conn.send(SPARE_ERROR + json.dumps(_describe(exc)).encode())
                os._exit(0)
            if job_pid:
                # The waiter: the job's process is pid 1 of the namespace just made and
                # ends with it; this process only mirrors how it ended.
                conn.close()
                _JAIL.wait_and_mirror(job_pid)
        # Everything that does not depend on the job is done now, while the child waits
        # for one: it is then off the job's critical path.
        setup_error: dict[str, Any] | None = None
        try:
            self._prepare(conn.fileno())
        except BaseException as exc:
            setup_error = _describe(exc)
        listener = None
        if setup_error is None and (jail_cfg or {}).get("job", {}).get("egress"):
            try:
                listener = _JAIL.egress_listener()
            except BaseException as exc:
                setup_error = _describe(exc)
        try:
            # Ready: the runner places this process in the job's cgroup before it hands
            # it a job (the datagram carries our pid), and serves the job's egress on the
            # listener it gets with it (ours is closed: the job cannot take it over).
            if listener is not None:
                socket.send_fds(conn, [SPARE_READY], [listener.fileno()])
                listener.close()
            else:
                conn.send(SPARE_READY)
            data, fds = _recv_fds(conn, JOB_BUFSIZE, 5)
        except OSError:
            os._exit(0)
        if not data or len(fds) not in (3, 4, 5):
            os._exit(0)  # the runner closed our socket: no job will come
        conn.close()
        self._run_job(data, fds, setup_error)

    def _prepare(self, keep_fd: int) -> None:
        fd_top = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if not 0 < fd_top < (1 << 20):  # RLIM_INFINITY or huge
            fd_top = 1 << 20
        limits = self.cfg["limits"]
        # 0: the job's cgroup limits memory and processes for the job as a whole.
        if limits["memory_bytes"]:
            _limit(resource.RLIMIT_AS, limits["memory_bytes"], limits["memory_bytes"])
        _limit(resource.RLIMIT_FSIZE, limits["file_size_bytes"], limits["file_size_bytes"])
        _limit(resource.RLIMIT_NOFILE, limits["open_files"], limits["open_files"])
        if limits["processes"]:
            _limit(resource.RLIMIT_NPROC, limits["processes"], limits["processes"])
        _limit(resource.RLIMIT_CORE, 0, 0)
        os.environ.clear()
        # tempfile caches its directory; it must be the job's TMPDIR, not the template's.
        tempfile = sys.modules.get("tempfile")
        if tempfile is not None:
            tempfile.tempdir = None  # type: ignore[attr-defined]
        sys.argv = [os.path.join(self.cfg["skill_dir"], self.cfg["module_file"])]
        # Lines reach the runner (and the job's log events) as they are printed.
        for stream in (sys.stdout, sys.stderr):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(line_buffering=True)
        # The job sees stdin (/dev/null), stdout, stderr and its result pipe, nothing else
        # (whatever the skill's module opened at import time included).
        os.closerange(3, keep_fd)
        os.closerange(keep_fd + 1, fd_top)
        self._rehearse()

    def _rehearse(self) -> None:
        """Walk the job's own steps once on a stand-in job. A fresh child shares every
        page with the template, and the first write to each page copies it; paying for
        those copies now, while the child waits, takes them off the job's latency."""
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            socket.send_fds(a, [json.dumps(_REHEARSAL).encode()], [w, w, w])
            data, fds = _recv_fds(b, JOB_BUFSIZE, 4)
            job = json.loads(data)
            for fd in fds:
                os.dup2(fd, w, inheritable=False)
                os.close(fd)
            os.environ.update(job["env"])
            os.environ.clear()
            _Reporter(job["max_result_bytes"], -1).encode_ok({"ok": [1, 2.5, None]})
        finally:
            for fd in (r, w):
                os.close(fd)
            a.close()
            b.close()

    def _run_job(self, data: bytes, fds: list[int], setup_error: dict[str, Any] | None) -> None:
        # A job too large for a datagram comes as a 4th fd, a memfd holding the JSON.
        job = json.loads(_read_all(fds[3]) if data == b"@" else data)
        out_w, err_w, res_w = fds[:3]
        # Received fds take the lowest free numbers (3 and up): only 1, 2 and 3 matter,
        # and the channel of a job that has one (the last fd), moved to CHANNEL_FD.
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        if res_w != RESULT_FD:
            os.dup2(res_w, RESULT_FD, inheritable=False)
        channel = bool(job.get("channel"))
        if channel:
            if fds[-1] != CHANNEL_FD:
                os.dup2(fds[-1], CHANNEL_FD, inheritable=False)
            job["inputs"] = {**job["inputs"], "channel_fd": CHANNEL_FD}
        for fd in fds:
            if fd > RESULT_FD and not (channel and fd == CHANNEL_FD):
                os.close(fd)
        reporter = _Reporter(job["max_result_bytes"], RESULT_FD)
        try:
            if setup_error is not None:
                raise RuntimeError(f"{setup_error['type']}: {setup_error['message']}")
            _limit(resource.RLIMIT_CPU, job["cpu_soft_s"], job["cpu_hard_s"])
            os.environ.update(job["env"])
            os.chdir(job["cwd"])
            _reseed_random()
        except BaseException as exc:
            info = _describe(exc)
            reporter.report(
                {
                    "kind": "exception",
                    "type": "RuntimeError",
                    "message": "could not set up the job's process: "
                    f"{info['type']}: {info['message']}",
                    "traceback": "",
                }
            )
            os._exit(0)
        if self.import_error is not None:
            reporter.report({"kind": "import_error", **self.import_error})
            os._exit(0)
        func = self.func
        assert func is not None
        try:
            result = func(job["inputs"])
        except BaseException as exc:
            try:
                report = {"kind": "exception", **_describe(exc, skip_frames=1)}
            except BaseException:  # e.g. MemoryError again while formatting
                report = {
                    "kind": "exception",
                    "type": _type_name(type(exc)),
                    "message": "",
                    "traceback": "",
                }
            del exc
            reporter.report(report)
        else:
            reporter.result(result, self.cfg["function"])
        os._exit(0)


def _reseed_random() -> None:
    """Every generator the job inherited from the template gets fresh seeds: a fork
    copies their state, and two jobs must never draw the same numbers."""
    rnd = sys.modules.get("random")
    if rnd is not None:
        rnd.seed()
    ssl = sys.modules.get("ssl")
    if ssl is not None:
        ssl.RAND_add(os.urandom(64), 64.0)
    np_random = sys.modules.get("numpy.random")
    if np_random is not None:
        with contextlib.suppress(Exception):
            np_random.seed()


_REHEARSAL: dict[str, Any] = {
    "inputs": {"text": "x", "n": 1, "list": [1.5, None, True]},
    "env": {"PURAS_JOB_ID": "x", "HOME": "/nonexistent"},
    "cwd": "/",
    "cpu_soft_s": 1,
    "cpu_hard_s": 2,
    "max_result_bytes": 1 << 20,
}


class _Reporter:
    def __init__(self, max_result_bytes: int, fd: int) -> None:
        self.max = max_result_bytes
        self.fd = fd

    def encode_ok(self, value: object) -> bytes:
        return b'{"kind":"ok","result":' + _encode_result(value) + b"}"

    def result(self, value: object, function: str) -> None:
        if not isinstance(value, dict):
            self.report(
                {
                    "kind": "bad_return",
                    "message": f"{function}() must return a dict (a JSON object), it returned "
                    f"{type(value).__name__}",
                }
            )
            return
        try:
            data = self.encode_ok(value)
        except (TypeError, ValueError, RecursionError) as exc:
            self.report(
                {
                    "kind": "bad_return",
                    "message": f"{function}() returned a dict that is not JSON-serializable: {exc}",
                }
            )
            return
        size = len(data) - len(b'{"kind":"ok","result":}')
        if size > self.max:
            self.report({"kind": "too_large", "size": size})
            return
        self._write(data)

    def report(self, msg: dict[str, Any]) -> None:
        try:
            data = json.dumps(msg, ensure_ascii=False).encode()
        except BaseException:  # out of memory again, or an unencodable message
            kind = str(msg.get("type", "Exception")).encode("ascii", "replace")
            data = (
                b'{"kind":"exception","type":"%s","message":"(details lost while reporting '
                b'them)","traceback":""}' % kind.replace(b'"', b"'").replace(b"\\", b"/")
            )
        self._write(data)

    def _write(self, data: bytes) -> None:
        # Output first, then closed: the runner sees the end of stdout and stderr now,
        # not after the kernel has torn down this process's memory at exit.
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
            with contextlib.suppress(Exception):
                stream.flush()
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            _write_all(self.fd, data)
            os.close(self.fd)


_JAIL: Any = None
"""The runner's ``jail`` module, loaded by path when the template is confined."""


def _load_jail(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("_puras_jail", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the sandbox module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reexec_in_jail(cfg: dict[str, Any], sock: socket.socket) -> None:
    """Confine this process (still root), then start again inside the jail, where the
    venv, the bundle and this script have paths of the jail's own (``/venv``,
    ``/bundle``, ``/puras``). Never returns."""
    jail_cfg = cfg["jail"]
    jail = _load_jail(jail_cfg["module"])
    confined = jail.enter_template_jail(jail_cfg["template"])
    if confined:
        # Root, outside: only wait for the template, and end as it ends.
        sock.close()
        jail.wait_and_mirror(confined)
    inside = jail_cfg["inside"]
    os.set_inheritable(sock.fileno(), True)
    again = {
        **cfg,
        "jailed": True,
        "bundle_root": inside["bundle_root"],
        "skill_dir": inside["skill_dir"],
        # What the confined template still needs, and no more: every job forked from it
        # shows this command line, so the host's layout (the jail's binds, the runner's
        # folders) stays out of it.
        "jail": {"job": jail_cfg["job"], "inside": {"module": inside["module"]}},
    }
    os.execve(
        inside["python"],
        [inside["python"], "-I", inside["script"], json.dumps(again)],
        inside["env"],
    )


def main() -> None:
    cfg = json.loads(sys.argv[1])
    sock = socket.socket(fileno=cfg["fd"])
    sock.setblocking(True)
    # Die when the runner dies (SIGTERM, handled: our children's process groups go too).
    _set_parent_death_signal(signal.SIGTERM)
    # Confined, our parent is the root waiter outside our pid namespace (getppid() is 0
    # here); it checked the runner was alive, and dies with it.
    if not cfg.get("jailed") and os.getppid() != cfg["runner_pid"]:
        return
    jail_cfg = cfg.get("jail")
    if not cfg.get("jailed"):
        # The runner places us in our cgroup, then says go: nothing of ours (and no user
        # code) runs before that.
        if sock.recv(64) != b'{"op":"go"}':
            return
        if jail_cfg is not None:
            _reexec_in_jail(cfg, sock)
    if jail_cfg is not None:
        global _JAIL
        _JAIL = _load_jail(jail_cfg["inside"]["module"])
    sys.path[:0] = [cfg["skill_dir"], cfg["bundle_root"]]
    global _SHOWN_ROOT
    _SHOWN_ROOT = cfg["bundle_root"].rstrip(os.sep) + os.sep
    template = Template(cfg, sock)
    t0 = time.perf_counter()
    template.load()
    cfg["import_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    template.serve()


if __name__ == "__main__":
    main()
