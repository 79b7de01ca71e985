"""Kernel sandbox primitives for job processes: namespaces, mounts, credentials, seccomp.

Standard library only. The template process loads this file by path (it runs with a
deployment venv's interpreter, where nothing of the runner is importable) and the runner
imports it to probe what the host supports. Nothing here decides policy: the runner's
``adapters/sandbox.py`` says what to mount and which syscalls to refuse; this module
only carries that out.

Two steps, both before any user code runs:

* :func:`enter_template_jail` runs in the template process while it is still root (the
  runner started it): a new mount, network, IPC and UTS namespace; a root filesystem
  built on a tmpfs from read-only binds (the system's ``/usr``, the interpreter, the
  deployment's venv and bundle) plus the project's drive; ``pivot_root`` so that nothing
  else of the host stays reachable; then the project's unprivileged uid, no capabilities
  (the bounding set is emptied too), ``no_new_privs`` and the template's seccomp filter.
* :func:`clone_job` and :func:`enter_cloned_job_jail` make each job's process, a child
  of the template cloned straight into a new user, pid, mount, network and IPC namespace
  of its own (an unprivileged process may create these), so the job is pid 1 of a
  namespace the kernel tears down with everything in it when the job ends (where a raw
  ``clone`` is not safe, :func:`enter_job_jail` does the same with a fork, ``unshare``
  and a second fork, and a waiter in between); a private ``/job``, ``/tmp`` and
  ``/dev/shm``; its own ``/proc``; then every capability dropped and the job's stricter
  seccomp filter (no more namespaces, mounts, ptrace...).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import platform
import select
import signal
import socket
import struct
from typing import Any

__all__ = [
    "BUNDLE",
    "JOB_HOME",
    "JOB_NAMESPACES",
    "RUNTIME",
    "VENV",
    "JailError",
    "can_clone_job",
    "clone_job",
    "egress_listener",
    "enter_cloned_job_jail",
    "enter_job_jail",
    "enter_template_jail",
    "job_uid",
]

JOB_HOME = "/job"
"""The job's private working directory (a tmpfs of its own), ``HOME`` and ``cwd``."""
VENV = "/venv"
"""Where a template's jail shows the deployment's venv (read-only)."""
BUNDLE = "/bundle"
"""Where it shows the deployment's bundle (read-only)."""
RUNTIME = "/puras"
"""Where it shows the template's own two scripts (read-only)."""
JOB_UID = 1000
"""The job's uid (and gid) inside its user namespace; mapped onto the project's host uid."""

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 0x2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SECCOMP_MODE_FILTER = 2
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_LAST_MAX = 63

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1

_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

_libc = ctypes.CDLL(None, use_errno=True)


class JailError(OSError):
    """A sandbox step failed; the process must not go on to run user code."""


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise JailError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(
        _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data)),
        f"mount {target}",
    )


def umount2(target: str, flags: int) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    nr = _PIVOT_ROOT.get(platform.machine())
    if nr is None:
        raise JailError(errno.ENOSYS, f"pivot_root: unsupported machine {platform.machine()}")
    _check(_libc.syscall(ctypes.c_long(nr), _b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    return _check(
        _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), 0, 0),
        f"prctl({option})",
    )


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def drop_capabilities() -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable sets."""
    drop_capabilities_bounding_only()
    if _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        if err != errno.EINVAL:  # kernels before 4.3 have no ambient set
            raise JailError(err, f"clearing ambient capabilities: {os.strerror(err)}")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def capabilities_effective() -> int:
    """The effective set of this process, as a bit mask (0: none). (``capget``: reading
    ``/proc/self/status`` costs a third of a millisecond, on every job.)"""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), "capget")
    return int(data[0].effective) | int(data[1].effective) << 32


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_seccomp(bpf: bytes) -> None:
    """Install a compiled classic-BPF seccomp filter (8 bytes per instruction)."""
    if not bpf or len(bpf) % 8:
        raise JailError(errno.EINVAL, "seccomp: empty or malformed filter")
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0), "seccomp")


def loopback_up() -> None:
    """Bring ``lo`` up in a fresh network namespace (it starts down)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sh22x", b"lo", 0)
        flags = struct.unpack("16sh22x", fcntl.ioctl(s, _SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sh22x", b"lo", flags | _IFF_UP))


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def job_uid(base: int, span: int, project_id: str) -> int:
    """The host uid a project's jobs run as: stable per project (its drive files stay its
    own across runners and restarts), never root, never the runner's."""
    import hashlib

    digest = hashlib.sha256(project_id.encode()).digest()
    return base + int.from_bytes(digest[:8], "big") % span


# -- the template's jail -----------------------------------------------------------------


def _mkdirs(path: str, mode: int = 0o755) -> None:
    os.makedirs(path, mode=mode, exist_ok=True)


def _bind(root: str, source: str, target: str, *, writable: bool, device: bool = False) -> None:
    dest = root + target
    if os.path.isdir(source):
        _mkdirs(dest)
    else:
        _mkdirs(os.path.dirname(dest))
        if not os.path.exists(dest):
            os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    mount(source, dest, None, MS_BIND | MS_REC)
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC
    if not device:
        flags = (flags & ~MS_NOEXEC) | MS_NODEV
    if not writable:
        flags |= MS_RDONLY
    mount(None, dest, None, flags)


def enter_template_jail(spec: dict[str, Any]) -> int:
    """Confine this (root) process as ``spec`` says, for good. See the module docstring.

    Returns twice, like ``fork``: the pid of the confined process in the caller, which
    stays root outside the template's pid namespace and must do nothing but wait for it
    (:func:`wait_and_mirror`), and ``0`` in the confined process (pid 1 of the new pid
    namespace, the project's uid, no capabilities, seccomp).

    ``spec``: ``root`` (an empty directory to build the new root on), ``binds`` (lists of
    ``[host path, path inside, writable]``), ``symlinks`` (``[target, path inside]``),
    ``files`` (``[path inside, text]``), ``devices`` (names under ``/dev``), ``uid``,
    ``gid``, ``hostname``, ``seccomp`` (hex of the template's compiled filter),
    ``tmp_size`` (tmpfs size of ``/tmp``), ``network`` (False: loopback only).
    """
    if os.geteuid() != 0:
        raise JailError(errno.EPERM, "the template jail must be entered as root")
    root = spec["root"].rstrip("/")
    unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    # Nothing mounted from here on may propagate back to the host's namespace.
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=8m")
    for path in ("/tmp", JOB_HOME):
        _mkdirs(root + path, 0o1777 if path == "/tmp" else 0o755)
    size = spec.get("tmp_size", "64m")
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size}")
    for source, target, writable in spec["binds"]:
        _bind(root, source, target, writable=bool(writable))
    for target, link in spec.get("symlinks", ()):
        _mkdirs(os.path.dirname(root + link))
        os.symlink(target, root + link)
    for path, text in spec.get("files", ()):
        _mkdirs(os.path.dirname(root + path))
        with open(root + path, "w") as f:
            f.write(text)
    # /dev: only harmless character devices, no host device nodes otherwise.
    _mkdirs(root + "/dev")
    mount("tmpfs", root + "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for name in spec.get("devices", ("null", "zero", "full", "random", "urandom")):
        _bind(root, "/dev/" + name, "/dev/" + name, writable=True, device=True)
    for name, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ):
        os.symlink(target, f"{root}/dev/{name}")
    _mkdirs(root + "/dev/shm")
    _mkdirs(root + "/proc")  # the pid namespace's own, mounted below
    mount("tmpfs", root + "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size}")
    # pivot_root(".", ".") stacks the old root under the new one; detaching it leaves no
    # path back to the host's filesystem.
    os.chdir(root)
    pivot_root(".", ".")
    umount2(".", MNT_DETACH)
    os.chdir("/")
    mount(None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    hostname = spec.get("hostname", "puras").encode()
    _check(_libc.sethostname(hostname, len(hostname)), "sethostname")
    loopback_up()
    uid, gid = int(spec["uid"]), int(spec["gid"])
    if uid == 0 or gid == 0:
        raise JailError(errno.EPERM, "jobs never run as root")
    # A pid namespace of the template's own: it sees its own processes only (not the
    # host's, not another project's even if two projects' uids collide), and when it
    # ends the kernel ends everything in it. This process stays outside, as root, and
    # only waits (the caller mirrors how the confined one ends).
    unshare(CLONE_NEWPID)
    pid, alive_r = _fork_watched()
    if pid:
        return pid
    # A proc of this namespace, fully visible: a job can mount its own only where one is.
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    drop_capabilities_bounding_only()
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)  # root to non-root: the kernel clears every capability
    if capabilities_effective():
        raise JailError(errno.EPERM, "capabilities survived the uid change")
    # The uid change cleared the parent-death signal: the waiter outside goes, so do we.
    _follow_parent(alive_r)
    # A uid change makes the process non-dumpable, which would leave /proc/self/uid_map
    # owned by root: the children could not map their own user namespaces.
    prctl(PR_SET_DUMPABLE, 1)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    load_seccomp(bytes.fromhex(spec["seccomp"]))
    return 0


def drop_capabilities_bounding_only() -> None:
    """Empty the bounding set (needs CAP_SETPCAP: call while still privileged)."""
    prctl_ = _libc.prctl
    for cap in range(_CAP_LAST_MAX + 1):
        if prctl_(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            if err == errno.EINVAL:
                break
            raise JailError(err, f"dropping capability {cap}: {os.strerror(err)}")


# -- each job's jail -----------------------------------------------------------------------


JOB_NAMESPACES = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC
"""The namespaces every job's process gets of its own."""

_CLONE = {"x86_64": 56, "aarch64": 220}
"""``clone``'s syscall number. Its arguments are (flags, stack, parent_tid, child_tid,
tls) on x86_64 and (flags, stack, parent_tid, tls, child_tid) on aarch64: all but the
flags are 0 here, which makes the order moot."""


def can_clone_job() -> bool:
    """Whether :func:`clone_job` is safe in this process: a raw ``clone`` skips what the C
    library's ``fork`` does besides the syscall, its ``pthread_atfork`` handlers (the
    locks of other threads) and its cached thread id. So only with one thread (nothing
    can hold a lock across the call), and only as pid 1 of a pid namespace (a confined
    template): the cached id is then 1, which is what the child, pid 1 of its own new
    namespace, really is."""
    if platform.machine() not in _CLONE or os.getpid() != 1:
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


_pyapi_libc: Any = None


def _clone_syscall() -> Any:
    """``syscall`` through ``PyDLL``: the GIL stays held across the call, as ``os.fork``
    holds it, so no other Python code runs between the two halves of the fork protocol."""
    global _pyapi_libc
    if _pyapi_libc is None:
        lib = ctypes.PyDLL(None, use_errno=True)
        fn = lib.syscall
        fn.restype = ctypes.c_long
        fn.argtypes = [ctypes.c_long, ctypes.c_ulong] + [ctypes.c_void_p] * 4
        _pyapi_libc = fn
    return _pyapi_libc


def clone_job() -> tuple[int, int]:
    """``fork`` straight into new namespaces (:data:`JOB_NAMESPACES`): one ``clone``
    instead of a fork, an ``unshare`` and a second fork (a new pid namespace applies to
    children only), so the job's process is pid 1 of its own namespace and this
    process's own child, which reaps it. Call only where :func:`can_clone_job`.

    Returns ``(pid, alive_w)`` in the parent: the write end of a pipe the child watches
    to know its parent is alive (``getppid()`` is 0 across a pid namespace); the caller
    keeps it open until it reaped the child. Returns ``(0, alive_r)`` in the child, for
    :func:`enter_cloned_job_jail`."""
    syscall = _clone_syscall()
    api = ctypes.pythonapi
    alive_r, alive_w = os.pipe2(os.O_CLOEXEC)
    # What os.fork does around fork(2): the interpreter's own locks and its at-fork
    # callbacks (random reseeds in the child, threading resets its state).
    api.PyOS_BeforeFork()
    pid = syscall(_CLONE[platform.machine()], JOB_NAMESPACES | signal.SIGCHLD, 0, 0, 0, 0)
    if pid == 0:
        api.PyOS_AfterFork_Child()
        os.close(alive_w)
        return 0, alive_r
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    os.close(alive_r)
    if pid < 0:
        os.close(alive_w)
        raise JailError(err, f"clone: {os.strerror(err)}")
    return pid, alive_w


def enter_cloned_job_jail(spec: dict[str, Any], uid: int, gid: int, alive_r: int) -> None:
    """In the child of :func:`clone_job`: the rest of :func:`enter_job_jail` (the
    namespaces exist already). ``uid``/``gid``: the parent's (the child's own read as
    the overflow ids until its maps are written)."""
    _follow_parent(alive_r)
    _map_ids(uid, gid)
    _confine_job(spec)


def enter_job_jail(spec: dict[str, Any]) -> int:
    """In a child of the template: new namespaces; forks the job's process.

    Returns the pid of the job's process in the caller (which only waits for it and
    mirrors its end, see :func:`wait_and_mirror`), and ``0`` in the job's process itself,
    which is pid 1 of its own pid namespace, fully confined on return. (Where it can,
    the template uses :func:`clone_job` instead, which needs no waiter.)

    ``spec``: ``job_size`` (tmpfs size of ``/job`` and of ``/tmp``), ``seccomp`` (hex of
    the job's compiled filter).
    """
    uid, gid = os.getuid(), os.getgid()
    unshare(JOB_NAMESPACES)
    _map_ids(uid, gid)
    pid, alive_r = _fork_watched()
    if pid:
        return pid
    _follow_parent(alive_r)
    _confine_job(spec)
    return 0


def _map_ids(uid: int, gid: int) -> None:
    """The job's uid and gid in its new user namespace are the parent's, on the host."""
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{JOB_UID} {uid} 1")
    _write("/proc/self/gid_map", f"{JOB_UID} {gid} 1")


def _confine_job(spec: dict[str, Any]) -> None:
    """In the job's process, in its new namespaces: its own mounts, then no capabilities
    and the job's seccomp filter."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    size = spec.get("job_size", "512m")
    opts = f"size={size},uid={JOB_UID},gid={JOB_UID}"
    mount("tmpfs", JOB_HOME, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0700,{opts}")
    # ./drive in the job's working directory is the project's drive.
    os.symlink("/drive", JOB_HOME + "/drive")
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size}")
    mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"mode=1777,size={size}")
    loopback_up()
    drop_capabilities()
    if capabilities_effective():
        raise JailError(errno.EPERM, "capabilities survived in the job's namespace")
    load_seccomp(bytes.fromhex(spec["seccomp"]))


_keep_alive: list[int] = []
"""Write ends of the pipes a forked child watches to know its parent is alive: kept
open (close-on-exec, so inherited by nothing) until this process ends."""


def _fork_watched() -> tuple[int, int]:
    """``fork`` that lets the child tell whether its parent is still there: returns
    ``(pid, -1)`` in the parent and ``(0, fd)`` in the child, for :func:`_follow_parent`."""
    alive_r, alive_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid:
        os.close(alive_r)
        _keep_alive.append(alive_w)
        return pid, -1
    os.close(alive_w)
    return 0, alive_r


def _follow_parent(alive_r: int) -> None:
    """Die with the parent from now on; if it is already gone, end at once."""
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    readable, _, _ = select.select([alive_r], [], [], 0)
    if readable:  # EOF: the parent's end of the pipe closed with it
        os._exit(0)
    os.close(alive_r)


EGRESS_PORT = 3128
"""Where, inside a job's own network namespace, the runner's egress proxy listens."""


def egress_listener(port: int = EGRESS_PORT) -> socket.socket:
    """A listening socket on ``127.0.0.1:port`` of this (the job's own) network
    namespace, for the runner: the caller hands it over (SCM_RIGHTS) and closes its own
    copy. A socket belongs to the namespace it was made in, so the runner accepts the
    job's connections on it from outside, and proxies them by its egress policy, with no
    process of the job's in between."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    return listener


def wait_and_mirror(pid: int) -> None:
    """In the waiter: wait for the job's process, then end the same way (exit code, or
    the same signal), so the template reports the job's own end. Never returns."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(70)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        with contextlib.suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a signal that does not terminate (cannot happen for a kill)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 70)
