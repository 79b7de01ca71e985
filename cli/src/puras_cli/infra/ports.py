"""Free loopback ports and waiting for a port to accept connections."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

__all__ = ["free_port", "wait_for_port"]


_HANDED_OUT: set[int] = set()
_LOCK = threading.Lock()


def free_port() -> int:
    """A port the kernel just handed out on 127.0.0.1 (free at the time of the call),
    and never one this process was given before: a port is only taken once its server
    binds it, and until then the kernel may hand the same number out again, which gave
    two services of one stack the same port (a health server answering the gateway's
    requests)."""
    with _LOCK:
        for _ in range(1000):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port
    raise RuntimeError("no free loopback port that this process was not given before")


def wait_for_port(
    port: int, *, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None, what: str = ""
) -> None:
    """Block until 127.0.0.1:port accepts a connection; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"{what or 'process'} exited with {proc.returncode} before listening"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what or 'port'} {port} not listening after {timeout:.0f}s")
        # A connect attempt is the event we wait on; the pause only paces the retries.
        time.sleep(0.01)
