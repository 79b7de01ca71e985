"""The seccomp filters of the job sandbox, compiled with libseccomp (through pyseccomp).

Two filters, both deny-lists on top of the namespaces (which already take away what a
syscall could reach): the template's, inherited by everything it forks, and the job's,
stacked on it in every job's process. The template must still be able to create the
jobs' namespaces (``unshare``, ``mount``), so those are refused only by the job's filter.
A refused syscall fails with ``EPERM`` (``ENOSYS`` for ``clone3``, so that the C library
falls back to ``clone``, whose flags a classic filter can inspect); a syscall of another
architecture's ABI (x32, i386 on x86_64) kills the process.

Compiled once per runner and handed to the template as bytes (the template's interpreter
has no libseccomp binding, and needs none to load a compiled program).
"""

from __future__ import annotations

import errno
import tempfile
from functools import cache
from typing import Final

__all__ = ["JOB_DENIED", "TEMPLATE_DENIED", "job_filter", "template_filter"]

TEMPLATE_DENIED: Final = (
    # the kernel and its modules
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "quotactl",
    "lookup_dcookie",
    "vhangup",
    "iopl",
    "ioperm",
    # interfaces with a long record of privilege escalations
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    # other processes' memory
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # clocks and the host's identity
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "nfsservctl",
)
"""Refused to the template and, through inheritance, to every job."""

JOB_DENIED: Final = (
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
)
"""Refused to a job's own process and everything it starts, on top of the above."""

_CLONE_NAMESPACE_FLAGS: Final = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x00000080,  # CLONE_NEWTIME
)


def _compile(denied: tuple[str, ...], *, no_new_namespaces: bool) -> bytes:
    import pyseccomp as sc

    flt = sc.SyscallFilter(defaction=sc.ALLOW)
    # Syscalls of a foreign ABI would slip past a filter written in native numbers.
    flt.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    for name in denied:
        try:
            flt.add_rule(sc.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError, OSError):
            continue  # not a syscall on this architecture (iopl on arm64, ...)
    if no_new_namespaces:
        for flag in _CLONE_NAMESPACE_FLAGS:
            flt.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        return out.read()


@cache
def template_filter() -> bytes:
    """The compiled filter every template loads (and every job inherits)."""
    return _compile(TEMPLATE_DENIED, no_new_namespaces=False)


@cache
def job_filter() -> bytes:
    """The compiled filter every job's process adds to the template's."""
    return _compile(JOB_DENIED, no_new_namespaces=True)
