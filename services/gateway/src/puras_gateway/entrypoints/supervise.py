"""Several HTTP workers of one gateway on one port (``PURAS_GATEWAY_WORKERS`` > 1).

The supervisor binds the listening socket and forks the workers, which all accept from
it (one accept queue: a connection waits for whichever worker is free, and one that is
still starting, or restarting, takes none). It runs no event loop and no thread, so
forking is safe; each worker then builds its own: NATS and Postgres connections, views,
watcher, uvicorn. Nothing a request needs lives in the supervisor: idempotency keys are
in NATS KV, jobs and projections in the log and Postgres, build outcomes on a shared
durable consumer; what each worker holds in memory (its views) follows the log, and
writes that must show on the next request wait for every worker (``puras_gateway.workers``).

A worker that exits is reaped (its slot cleared, so no writer waits for it) and started
again, at most once a second. SIGTERM or SIGINT is passed on to the workers, which shut
down gracefully; the supervisor exits once they have.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable

from puras_common.logging import get_logger
from puras_common.parent_death import end_with_parent
from puras_gateway.workers import WorkerSlots

__all__ = ["bind", "supervise"]

log = get_logger(__name__)

RESTART_MIN_S = 1.0
"""A worker is started again no sooner than this after its previous start."""
BACKLOG = 2048
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def bind(host: str, port: int) -> socket.socket:
    """The gateway's listening socket, shared by every worker (inherited across fork)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def supervise(n: int, worker: Callable[[int, WorkerSlots], int]) -> int:
    """Run ``worker(index, slots)`` in ``n`` forked processes until SIGTERM/SIGINT;
    returns the exit code for the supervisor."""
    slots = WorkerSlots(n)
    children: dict[int, int] = {}  # pid -> slot
    started: dict[int, float] = {}  # slot -> when its worker last started
    stopping = False

    def spawn(i: int) -> None:
        wait = started.get(i, 0.0) + RESTART_MIN_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # a worker dying at start must not spin
        if stopping:
            return  # told to stop meanwhile: no new worker would hear it
        started[i] = time.monotonic()
        # Blocked across the fork: a signal then must not run our handler in the child.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for sig in _STOP_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                # A supervisor killed outright (SIGKILL, OOM) takes its workers along.
                end_with_parent(supervisor)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
                code = worker(i, slots)
            except BaseException:
                log.exception("gateway worker failed", worker=i)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children[pid] = i
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for sig in _STOP_SIGNALS:
        signal.signal(sig, on_signal)
    for i in range(n):
        spawn(i)
    log.info("gateway workers started", workers=n, pids=sorted(children))
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        i = children.pop(pid, -1)
        if i < 0:
            continue
        slots.clear(i)
        exit_code = os.waitstatus_to_exitcode(status)
        if stopping:
            continue
        log.error("gateway worker exited; starting it again", worker=i, pid=pid, code=exit_code)
        code = 1
        spawn(i)
    return 0 if stopping else code
