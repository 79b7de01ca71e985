"""A forked worker that ends with the process that forked it.

A supervisor killed with SIGKILL runs no handler, so it cannot stop its workers: without
this they would go on serving on the inherited socket, outside anything that manages
them. Linux delivers the signal named here to the child when its parent dies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

__all__ = ["end_with_parent"]

_PR_SET_PDEATHSIG = 1


def end_with_parent(parent_pid: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """Ask the kernel to send ``sig`` to this process when ``parent_pid`` (its parent,
    read before the fork) dies; if it died already, send it now. No-op off Linux."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
    # The parent may have died between the fork and the prctl: then nobody will.
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), sig)
