"""Turning SIGTERM and SIGHUP into Ctrl-C while the dev stack runs.

Python ends on SIGTERM and SIGHUP without unwinding, which would leave every child of
the stack running (they sit in their own sessions, so a closed terminal does not reach
them). Raised as ``KeyboardInterrupt`` instead, they unwind through the ``finally``
that stops the stack.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ignoring_interrupts", "terminate_as_interrupt"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    old = {sig: signal.signal(sig, signal.default_int_handler) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@contextmanager
def ignoring_interrupts() -> Iterator[None]:
    """While stopping: an impatient second Ctrl-C must not abandon half the processes."""
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
