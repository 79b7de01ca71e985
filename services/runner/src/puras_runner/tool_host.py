"""An agent run's process in the job sandbox: runs its bash commands and user tools and
reads and writes its drive files, on the runner's requests (ARCHITECTURE §5).

Loaded by the template like a skill's module (``template_main`` imports it by absolute
path; inside the jail it is bound read-only under ``/puras``): an agentic skill's
template forks one job child per run whose "function" is :func:`run`, so the run gets
exactly a job's confinement (namespaces, seccomp, cgroup, rlimits, clean environment,
``cwd`` = the job's private workdir with ``./drive``). Standard library only: it runs
with the deployment venv's interpreter.

Protocol on the channel (a stream socket, fd ``inputs["channel_fd"]``): frames of an
8-byte header ``!II`` (JSON length, data length), the JSON object, then that many raw
bytes (file contents travel as bytes, never base64). One response per request, in
order. Requests:

* ``{"op": "bash", "command", "timeout_s"}`` -> ``{"exit_code", "output", "timed_out"}``
* ``{"op": "tool", "name", "module_file", "function", "inputs", "timeout_s",
  "max_result_bytes"}`` -> ``{"value"}`` or ``{"error"}``
* ``{"op": "read", "paths", "max_bytes"}`` -> ``{"files": [{"path", "size", "length",
  "error"}]}`` with the files' bytes concatenated as the data
* ``{"op": "write", "path"}`` with the bytes as data -> ``{"path"}``

Any request may be answered ``{"error": ...}`` instead. EOF on the channel ends the run
(:func:`run` returns); a malformed frame ends it too (it is the runner's own protocol).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["run"]

HEADER = struct.Struct("!II")
MAX_HEADER_BYTES = 64 << 20
MAX_DATA_BYTES = 1 << 30
BASH_OUTPUT_BYTES = 8 * 1024
"""What a bash call returns of its combined output: the last 8 KB."""
OUTPUT_GRACE_S = 0.5
"""After bash itself exited, how long something it left in the background may keep
writing to its output before the command's process group is ended."""
TRACEBACK_LINES = 30
MESSAGE_MAX_CHARS = 4000
_READ_CHUNK = 1 << 20


class ProtocolError(Exception):
    """The runner sent something that is not a frame of this protocol."""


# -- framing ---------------------------------------------------------------------------


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    """``n`` bytes, or ``None`` on EOF before the first one."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            if got == 0:
                return None
            raise ProtocolError("the channel closed in the middle of a frame")
        got += k
    return bytes(buf)


def recv_frame(sock: socket.socket) -> tuple[dict[str, Any], bytes] | None:
    head = _recv_exact(sock, HEADER.size)
    if head is None:
        return None
    json_len, data_len = HEADER.unpack(head)
    if json_len > MAX_HEADER_BYTES or data_len > MAX_DATA_BYTES:
        raise ProtocolError("frame too large")
    raw = _recv_exact(sock, json_len) if json_len else b""
    data = _recv_exact(sock, data_len) if data_len else b""
    if raw is None or data is None:
        raise ProtocolError("the channel closed in the middle of a frame")
    try:
        msg = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"bad frame: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("a frame's header must be a JSON object")
    return msg, data


def send_frame(sock: socket.socket, msg: dict[str, Any], data: bytes = b"") -> None:
    raw = json.dumps(msg, ensure_ascii=False, allow_nan=False).encode()
    sock.sendall(HEADER.pack(len(raw), len(data)) + raw)
    if data:
        sock.sendall(data)


# -- drive paths -----------------------------------------------------------------------


class PathRefused(ValueError):
    """A drive path the tools may not use; ``str()`` says why, for the model."""


def clean_drive_path(path: object) -> str:
    """The canonical drive path of ``path`` (a leading ``drive/`` stripped: the tools take
    paths as the job sees them), by the one normalizer every drive path goes through
    (D9, the SDK's, installed in every deployment's venv), or ``PathRefused``."""
    from puras._drive_paths import DrivePathError, normalize_file_path

    if not isinstance(path, str) or not path:
        raise PathRefused("a drive path must be a non-empty string")
    rel = path
    while rel.startswith("./"):
        rel = rel[2:]
    if rel.startswith("drive/"):
        rel = rel[len("drive/") :]
    try:
        return normalize_file_path(rel)
    except DrivePathError as exc:
        raise PathRefused(str(exc)) from None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


# -- the host --------------------------------------------------------------------------


class Host:
    def __init__(self, sock: socket.socket, skill_dir: str, drive_root: str) -> None:
        self.sock = sock
        self.skill_dir = skill_dir
        self.drive_root = drive_root
        self.modules: dict[str, Any] = {}
        """Tool modules imported so far (by file), or the error their import raised."""
        self.groups: set[int] = set()
        """Process groups of bash commands not yet ended (killed when the run ends)."""

    def serve(self) -> None:
        try:
            while True:
                frame = recv_frame(self.sock)
                if frame is None:
                    return
                msg, data = frame
                try:
                    reply, out = self.handle(msg, data)
                except Exception as exc:  # one request's failure, never the run's
                    reply, out = {"error": f"{type(exc).__name__}: {exc}"}, b""
                send_frame(self.sock, reply, out)
                self._reap_orphans()
        finally:
            for pgid in list(self.groups):
                _kill_group(pgid)

    def handle(self, msg: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
        op = msg.get("op")
        if op == "bash":
            return self.bash(str(msg["command"]), float(msg["timeout_s"])), b""
        if op == "tool":
            return self.tool(msg), b""
        if op == "read":
            return self.read(list(msg["paths"]), int(msg["max_bytes"]))
        if op == "write":
            return self.write(msg["path"], data), b""
        return {"error": f"unknown op {op!r}"}, b""

    def _reap_orphans(self) -> None:
        # As pid 1 of the job's namespace this process inherits every orphan; between
        # requests no child of ours is being waited for, so reaping all is safe.
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    # -- bash ----------------------------------------------------------------------------

    def bash(self, command: str, timeout_s: float) -> dict[str, Any]:
        proc = subprocess.Popen(
            ["/bin/bash", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
        self.groups.add(proc.pid)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        tail = bytearray()
        deadline = time.monotonic() + max(0.0, timeout_s)
        timed_out = False
        exited_at: float | None = None
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while True:
                now = time.monotonic()
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                if exited_at is not None and now >= exited_at + OUTPUT_GRACE_S:
                    break  # only something left in the background still holds the pipe
                if exited_at is None and now >= deadline:
                    timed_out = True
                    break
                limit = deadline if exited_at is None else exited_at + OUTPUT_GRACE_S
                # Short waits: bash's exit is noticed without a SIGCHLD handler.
                if not sel.select(min(0.05, max(0.0, limit - now))):
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    # Output closed: bash is ending (or closed it and goes on running).
                    try:
                        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        timed_out = True
                    break
                tail += chunk
                if len(tail) > 2 * BASH_OUTPUT_BYTES:
                    del tail[: len(tail) - BASH_OUTPUT_BYTES]
        finally:
            sel.close()
            # The whole command ends with it: nothing it started keeps running between
            # calls (files it wrote stay).
            _kill_group(proc.pid)
            proc.wait()
            self.groups.discard(proc.pid)
            proc.stdout.close()
        return {
            "exit_code": proc.returncode,
            "output": _decode_tail(bytes(tail[-BASH_OUTPUT_BYTES:])),
            "timed_out": timed_out,
        }

    # -- user tools ----------------------------------------------------------------------

    def _function(self, module_file: str, function: str) -> Callable[[Any], Any]:
        """The tool's function, its module imported once (later calls fork warm)."""
        entry = self.modules.get(module_file)
        if entry is None:
            try:
                entry = ("ok", _import(self.skill_dir, module_file))
            except BaseException as exc:  # the call's error, not the run's
                entry = ("error", _describe(exc, f"could not import {module_file}"))
            self.modules[module_file] = entry
        if entry[0] == "error":
            raise _ToolFailed(entry[1])
        func = getattr(entry[1], function, None)
        if func is None or not callable(func):
            raise _ToolFailed(f"{module_file} has no function {function!r}")
        return func  # type: ignore[no-any-return]

    def tool(self, msg: dict[str, Any]) -> dict[str, Any]:
        name = str(msg.get("name", "tool"))
        try:
            func = self._function(str(msg["module_file"]), str(msg["function"]))
        except _ToolFailed as exc:
            return {"error": str(exc)}
        max_bytes = int(msg["max_result_bytes"])
        r, w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the tool's child
            try:
                os.close(r)
                _tool_child(func, msg["inputs"], str(msg["function"]), w, max_bytes, self.sock)
            finally:
                os._exit(70)
        os.close(w)
        raw, timed_out = _read_until(r, time.monotonic() + float(msg["timeout_s"]), max_bytes)
        os.close(r)
        # Its group (whatever it started), and itself should it not have made the group
        # yet (killed before its setsid).
        _kill_group(pid)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if timed_out:
            return {"error": f"tool {name} timed out after {float(msg['timeout_s']):g}s"}
        if raw is None:
            return {"error": f"tool {name}'s result is over the {max_bytes}-byte limit"}
        if not raw:
            how = (
                f"killed by signal {os.WTERMSIG(status)}"
                if os.WIFSIGNALED(status)
                else f"exit code {os.waitstatus_to_exitcode(status)}"
            )
            return {"error": f"tool {name}'s process ended without a result ({how})"}
        return json.loads(raw)  # type: ignore[no-any-return]

    # -- drive files ---------------------------------------------------------------------

    def _resolve(self, rel: str) -> str:
        root = os.path.realpath(self.drive_root)
        path = os.path.realpath(os.path.join(root, rel))
        if not _inside(path, root) or path == root:
            raise PathRefused(f"drive path {rel!r} leads outside the drive")
        return path

    def read(self, paths: list[Any], max_bytes: int) -> tuple[dict[str, Any], bytes]:
        files: list[dict[str, Any]] = []
        chunks: list[bytes] = []
        for asked in paths:
            entry: dict[str, Any] = {"path": asked if isinstance(asked, str) else str(asked)}
            try:
                rel = clean_drive_path(asked)
                entry["path"] = rel
                data, size = self._read_one(rel, max_bytes)
                entry.update(size=size, length=len(data))
                chunks.append(data)
            except PathRefused as exc:
                entry["error"] = str(exc)
            except FileNotFoundError:
                entry["error"] = f"no such file in the drive: {entry['path']}"
            except OSError as exc:
                entry["error"] = f"could not read {entry['path']}: {exc.strerror or exc}"
            files.append(entry)
        return {"files": files}, b"".join(chunks)

    def _read_one(self, rel: str, max_bytes: int) -> tuple[bytes, int]:
        path = self._resolve(rel)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise PathRefused(f"{rel} is not a regular file")
            if st.st_size > max_bytes:
                raise PathRefused(f"{rel} is {st.st_size} bytes, over the {max_bytes}-byte limit")
            chunks: list[bytes] = []
            total = 0
            while chunk := os.read(fd, _READ_CHUNK):
                total += len(chunk)
                if total > max_bytes:  # it grew while being read
                    raise PathRefused(f"{rel} is over the {max_bytes}-byte limit")
                chunks.append(chunk)
            return b"".join(chunks), total
        finally:
            os.close(fd)

    def write(self, asked: Any, data: bytes) -> dict[str, Any]:
        try:
            rel = clean_drive_path(asked)
            if isinstance(asked, str) and asked.endswith("/"):
                raise PathRefused(f"drive path {asked!r} names a folder, not a file")
            root = os.path.realpath(self.drive_root)
            folder = os.path.realpath(os.path.join(root, os.path.dirname(rel)))
            if not _inside(folder, root):
                raise PathRefused(f"drive path {rel!r} leads outside the drive")
            os.makedirs(folder, exist_ok=True)
            target = os.path.join(folder, os.path.basename(rel))
            if os.path.isdir(target) and not os.path.islink(target):
                raise PathRefused(f"{rel} is a folder in the drive")
            tmp = os.path.join(folder, f".{os.path.basename(rel)}.{os.getpid()}.part")
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                finally:
                    os.close(fd)
                os.replace(tmp, target)  # readers see the old file or the whole new one
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except PathRefused as exc:
            return {"error": str(exc)}
        except OSError as exc:
            return {"error": f"could not write {asked}: {exc.strerror or exc}"}
        return {"path": rel}


class _ToolFailed(Exception):
    pass


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


def _decode_tail(data: bytes) -> str:
    # The cut may have split a character: drop its continuation bytes.
    i = 0
    while i < min(3, len(data)) and 0x80 <= data[i] < 0xC0:
        i += 1
    return data[i:].decode("utf-8", errors="replace")


def _read_until(fd: int, deadline: float, max_bytes: int) -> tuple[bytes | None, bool]:
    """What the tool's child wrote on its result pipe until EOF: ``(bytes, False)``;
    ``(None, False)`` past ``max_bytes`` (plus the envelope); ``(b"", True)`` at the
    deadline."""
    cap = max_bytes + 64 * 1024
    chunks: list[bytes] = []
    total = 0
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return b"", True
            if not sel.select(left):
                continue
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                return b"".join(chunks), False
            total += len(chunk)
            if total > cap:
                return None, False
            chunks.append(chunk)


def _type_name(exc_type: type) -> str:
    module = getattr(exc_type, "__module__", "builtins")
    name = getattr(exc_type, "__qualname__", exc_type.__name__)
    return name if module in ("builtins", "__main__") else f"{module}.{name}"


def _describe(exc: BaseException, what: str) -> str:
    try:
        message = str(exc)[:MESSAGE_MAX_CHARS]
    except Exception:
        message = "<unprintable>"
    try:
        lines = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        tail = "\n".join(lines.splitlines()[-TRACEBACK_LINES:])
    except Exception:
        tail = ""
    head = (
        f"{what}: {_type_name(type(exc))}: {message}"
        if what
        else (f"{_type_name(type(exc))}: {message}")
    )
    return f"{head}\n\n{tail}" if tail else head


def _import(skill_dir: str, module_file: str) -> Any:
    if os.path.isabs(module_file) or ".." in module_file.split("/"):
        raise ImportError(f"tool file {module_file!r} must be inside the skill folder")
    path = os.path.join(skill_dir, module_file)
    stem = os.path.splitext(os.path.basename(path))[0]
    name = f"_puras_tool_{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {module_file!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _tool_child(
    func: Callable[[Any], Any],
    inputs: Any,
    function: str,
    res_w: int,
    max_bytes: int,
    channel: socket.socket,
) -> None:  # pragma: no cover - runs in the tool's child
    # Its own process group (killed as a whole at the timeout); nothing of the channel:
    # user code must not speak the runner's protocol.
    os.setsid()
    channel.close()
    try:
        value = func(inputs)
    except BaseException as exc:
        report: dict[str, Any] = {"error": _describe(exc, "")}
    else:
        if not isinstance(value, dict):
            report = {
                "error": f"{function}() must return a dict (a JSON object), "
                f"it returned {type(value).__name__}"
            }
        else:
            try:
                encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError, RecursionError) as exc:
                report = {"error": f"{function}() returned a value that is not JSON: {exc}"}
            else:
                if len(encoded.encode()) > max_bytes:
                    report = {
                        "error": f"{function}() returned {len(encoded.encode())} bytes of JSON, "
                        f"over the {max_bytes}-byte limit"
                    }
                else:
                    data = ('{"value":' + encoded + "}").encode()
                    _finish(res_w, data)
                    return
    _finish(res_w, json.dumps(report, ensure_ascii=False).encode())


def _finish(fd: int, data: bytes) -> None:  # pragma: no cover - runs in the tool's child
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    os._exit(0)


def run(inputs: dict[str, Any]) -> dict[str, Any]:
    """Serve the run's requests until the runner closes the channel."""
    sock = socket.socket(fileno=int(inputs["channel_fd"]))
    sock.setblocking(True)
    host = Host(sock, str(inputs["skill_dir"]), os.path.realpath(str(inputs.get("drive", "drive"))))
    try:
        host.serve()
    finally:
        sock.close()
    return {}
