"""The whole system on one machine: nats-server, Postgres and the five services.

:class:`Stack` is what ``puras dev up`` and ``puras dev demo`` run, and what the
end-to-end tests start: real processes on free loopback ports, each service in its own
process group with its log in ``<work_dir>/logs/<service>.log``. Two stacks with separate
work dirs run side by side without sharing a port, a store or a database.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType

import httpx

from puras_cli import api
from puras_cli.client import ApiTimeout, ApiUnreachable, PurasClient, PurasError
from puras_cli.devstack.proctree import ProcRef, descendants, is_alive, proc_ref, signal_refs
from puras_cli.infra.nats_server import NatsServer, generate_passwords
from puras_cli.infra.pg_roles import provision_roles_sync, role_url
from puras_cli.infra.ports import free_port
from puras_cli.infra.postgres import PostgresServer
from puras_common.db import DB_ROLES
from puras_common.secret_box import generate_key

__all__ = [
    "HEALTH_SERVED_BY",
    "SERVICES",
    "DevProject",
    "Stack",
    "StackBusy",
    "StackError",
    "claim_work_dir",
    "log_tail",
]

SERVICES: tuple[str, ...] = ("gateway", "projector", "scheduler", "runner", "billing", "drive")
"""The processes of a stack, each run from the ``puras-<service>`` console script of the
venv, except those of :data:`PROCESS_OF` (a second process of a service)."""

PROCESS_OF: Mapping[str, tuple[str, str]] = {
    "projector": ("gateway", "puras-gateway-projector"),
}
"""Process kinds that belong to another service: ``kind -> (service, console script)``.
They run as that service (its NATS identity, Postgres role and ``PURAS_<SERVICE>_*``
settings): the gateway's projections run in a process of their own, so the API's event
loop serves requests only."""

HEALTH_SERVED_BY: frozenset[str] = frozenset(
    {"projector", "scheduler", "runner", "billing", "drive"}
)
"""Services (besides the gateway, whose API port has them) that serve ``/healthz`` and
``/readyz`` on ``PURAS_<SERVICE>_HEALTH_PORT`` when it is set. The stack gives each a free
port and waits for it to be ready. Every service's settings have the field, but only these
entrypoints start the server: a service joins this set when its entrypoint does."""

DATABASE = "puras"
STOP_GRACE_S = 10.0
"""How long a service may take to shut down after SIGTERM before it is SIGKILLed."""
_TERMINATING = frozenset(
    {signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP}
)
_PIDS_FILE = "stack.pids"
_OWNER = "_owner"
"""Key of the process that runs the Stack object in the pids file."""


class StackError(PurasError):
    """The stack could not start, or a process of it failed."""


class StackBusy(StackError):
    """Another live stack already runs in this work dir."""


@dataclass(frozen=True)
class DevProject:
    """A project made by :meth:`Stack.bootstrap_project`, with its first key."""

    project_id: str
    api_key: str


@dataclass
class _Service:
    name: str
    script: Path
    env: dict[str, str]
    log_path: Path
    health_base: str | None
    """Where its ``/healthz`` and ``/readyz`` answer (``None``: it has no health port)."""
    proc: subprocess.Popen[bytes] | None = None
    ref: ProcRef | None = None
    expected_exit: bool = False
    """Set when the stack itself stopped or killed it: its exit is not a failure."""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


_CREDENTIAL_SUFFIXES = (
    "NATS_USER",
    "NATS_PASSWORD",
    "NATS_URL",
    "DATABASE_URL",
    "DATABASE_PASSWORD",
    "ADMIN_TOKEN",
    "API_KEY",
    "SECRETS_KEY",
    "SECRETS_PREVIOUS_KEYS",
)


def _is_credential_var(name: str) -> bool:
    """Variables of the launching environment that could carry a credential."""
    if name in ("DATABASE_URL", "PGPASSWORD", "PGPASSFILE", "PGUSER", "PGSERVICEFILE"):
        return True
    return name.startswith("PURAS_") and name.endswith(_CREDENTIAL_SUFFIXES)


_SECRETS_KEY_HOLDERS = frozenset({"gateway", "runner"})
"""The services given the secrets master key: the one that seals, the ones that open."""

_PROVIDER_PREFIXES = ("ANTHROPIC_", "OPENAI_", "GEMINI_")


def _is_provider_var(name: str) -> bool:
    """Variables of the model SDKs (keys, base URLs): only the runner calls models."""
    return name.startswith(_PROVIDER_PREFIXES) or (
        name.startswith(
            ("PURAS_RUNNER_ANTHROPIC_", "PURAS_RUNNER_OPENAI_", "PURAS_RUNNER_MEDIA_UPSTREAM_")
        )
    )


def log_tail(path: Path, lines: int = 40, max_line: int = 400) -> str:
    """The last ``lines`` lines of a log file (read from its end, however big it is)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read()
    except OSError:
        return f"(no log at {path})"
    out = []
    for raw in data.decode(errors="replace").splitlines()[-lines:]:
        out += _render_log_line(raw, max_line)
    return "\n".join(out) if out else f"(empty log at {path})"


def _render_log_line(raw: str, max_line: int) -> list[str]:
    """A log line, shortened; a JSON line's ``exception`` shown as its traceback's end,
    since the error that stopped a service is at the bottom of a long one-line string."""
    exc_lines: list[str] = []
    if raw.startswith("{") and '"exception"' in raw:
        try:
            record = json.loads(raw)
        except ValueError:
            record = None
        if isinstance(record, dict) and isinstance(record.get("exception"), str):
            exc_lines = ["    " + ln for ln in record.pop("exception").splitlines()[-8:]]
            raw = json.dumps(record)
    head = raw if len(raw) <= max_line else raw[:max_line] + " …"
    return [head, *exc_lines]


@contextlib.contextmanager
def _explained(what: str, log: Path) -> Iterator[None]:
    """Turn a server's failure to start into a :class:`StackError` carrying its log tail."""
    try:
        yield
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        detail = str(exc)
        if isinstance(exc, subprocess.CalledProcessError) and exc.stderr:
            detail += ": " + exc.stderr.decode(errors="replace").strip()[-2000:]
        raise StackError(
            f"{what} did not start ({detail}); last lines of {log}:\n{log_tail(log)}"
        ) from exc


def claim_work_dir(work_dir: Path, progress: Callable[[str], None] | None = None) -> None:
    """Refuse (:class:`StackBusy`) if a live stack runs in ``work_dir``; stop the processes
    a dead one left running (its owner was SIGKILLed, or its terminal closed).

    Call it before acting on files of ``work_dir`` that a running stack may own.
    """
    path = work_dir / _PIDS_FILE
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    alive = {
        name: ProcRef(int(v[0]), int(v[1]))
        for name, v in saved.items()
        if is_alive(ProcRef(int(v[0]), int(v[1])))
    }
    owner = alive.pop(_OWNER, None)
    if owner is not None:
        # Not leftovers: another stack (another `./dev up`) is running in this dir.
        raise StackBusy(
            f"a stack is already running in {work_dir} (process {owner.pid}); "
            "stop it first (Ctrl-C in its terminal, or kill that pid)"
        )
    if alive and progress is not None:
        progress(
            f"stopping processes left running by an earlier run in {work_dir}: "
            + ", ".join(f"{n} ({r.pid})" for n, r in alive.items())
        )
    # Services first (they hold connections), then the servers; Postgres shuts down fast
    # on SIGINT. Each was the leader of its own process group.
    for phase in (
        [n for n in alive if n not in ("nats-server", "postgres")],
        [n for n in alive if n in ("nats-server", "postgres")],
    ):
        for name in phase:
            sig = signal.SIGINT if name == "postgres" else signal.SIGTERM
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(alive[name].pid, sig)
        deadline = time.monotonic() + STOP_GRACE_S
        while any(is_alive(alive[n]) for n in phase) and time.monotonic() < deadline:
            # Not our children: there is nothing to wait on but their disappearance.
            time.sleep(0.05)
        for name in phase:
            if is_alive(alive[name]):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(alive[name].pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while any(is_alive(alive[n]) for n in phase) and time.monotonic() < deadline:
            time.sleep(0.05)
    path.unlink(missing_ok=True)


class Stack:
    """Start with :meth:`start` (or ``with Stack(...) as stack``), stop with :meth:`stop`.

    ``database_url`` (else ``$DATABASE_URL``) uses an existing Postgres database instead of
    starting one under ``work_dir``; its user must be able to create roles, since each
    service with tables gets a role of its own (``puras_cli.infra.pg_roles``). Every
    service gets only its own NATS identity and database role, with passwords new at
    every start; ``nats_url`` and ``database_url`` are the privileged ones (``ops``, the
    superuser) for operator tools and tests. ``env`` is applied last to every service's
    environment. ``admin_token`` and ``gateway_port`` are chosen at random unless given
    (``puras dev up`` gives both so that a restart keeps its address and token).
    ``separate_projector`` runs the gateway's projections in a ``projector`` process of
    their own (the default, as deployed); off, the gateway runs them in-process.
    ``gateway_workers`` HTTP processes of the gateway share its port.
    ``fsync=False`` trades the embedded Postgres's crash safety for speed (throwaway data).
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        database_url: str | None = None,
        env: Mapping[str, str] | None = None,
        runners: int = 1,
        admin_token: str | None = None,
        secrets_key: str | None = None,
        gateway_port: int = 0,
        gateway_workers: int = 1,
        separate_projector: bool = True,
        fsync: bool = True,
        bin_dir: Path | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if runners < 1:
            raise ValueError("a stack needs at least one runner")
        self.work_dir = Path(work_dir).resolve()
        self._external_db = database_url or os.environ.get("DATABASE_URL") or None
        self._env_overrides = dict(env or {})
        self._runners = runners
        self._admin_token = admin_token or secrets.token_urlsafe(32)
        # The drive's own port and secrets, made per stack like the NATS passwords: the
        # gateway forwards the drive API there with the internal token.
        self._drive_port = 0
        self._drive_token = secrets.token_urlsafe(32)
        self._drive_signing_secret = secrets.token_urlsafe(32)
        # The master key of project secrets, per stack; the gateway's and the runners'
        # alone (set_secrets_keys rotates it).
        self._secrets_key = secrets_key or generate_key()
        self._secrets_previous: tuple[str, ...] = ()
        self._gateway_port = gateway_port
        if gateway_workers < 1:
            raise ValueError("a gateway needs at least one worker")
        self._gateway_workers = gateway_workers
        self._separate_projector = separate_projector
        self._fsync = fsync
        # The venv's bin dir, not the resolved interpreter's: console scripts live there.
        self._bin_dir = bin_dir or Path(sys.executable).parent
        self._progress = progress or (lambda _msg: None)
        self.nats: NatsServer | None = None
        self.postgres: PostgresServer | None = None
        self._database_url: str | None = None
        # Credentials of this run (new at every start, never written but to the nats
        # config and the services' environments): one NATS identity and, for services
        # with tables, one Postgres role per service.
        self._nats_passwords = generate_passwords()
        self._db_passwords = {svc: secrets.token_urlsafe(24) for svc in DB_ROLES}
        self._services: dict[str, _Service] = {}
        self._orphans: list[ProcRef] = []
        self._started = False
        self._pids_written = False

    # -- properties -----------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._require_port()}"

    @property
    def admin_token(self) -> str:
        return self._admin_token

    @property
    def nats_url(self) -> str:
        """URL of the privileged ``ops`` identity (credentials in it): for operator tools
        and tests, never given to a service."""
        if self.nats is None:
            raise StackError("the stack is not started")
        return self.nats.url

    @property
    def nats_address(self) -> str:
        """The nats-server's URL without credentials."""
        if self.nats is None:
            raise StackError("the stack is not started")
        return self.nats.address

    def nats_password(self, identity: str) -> str:
        """The password of a NATS identity of this run (a service name, or ``ops``)."""
        return self._nats_passwords[identity]

    def database_password(self, service: str) -> str:
        """The password of a service's Postgres role in this run."""
        return self._db_passwords[service]

    @property
    def database_url(self) -> str:
        if self._database_url is None:
            raise StackError("the stack is not started")
        return self._database_url

    @property
    def logs_dir(self) -> Path:
        return self.work_dir / "logs"

    @property
    def gateway_port(self) -> int:
        return self._require_port()

    def _require_port(self) -> int:
        if not self._gateway_port:
            raise StackError("the stack is not started")
        return self._gateway_port

    # -- start ----------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> Stack:
        """Start everything; returns once ``/healthz`` and ``/readyz`` answer 200 on the
        gateway and on every service that has a health port.

        On any failure (or Ctrl-C) everything started so far is stopped before the
        exception propagates, and a service that exited is reported with its log's tail.
        """
        if self._started:
            raise StackError("the stack is already started")
        self._started = True
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.claim_work_dir()
            self._start_infra(timeout)
            if not self._gateway_port:
                self._gateway_port = free_port()
            names = ["gateway", *(["projector"] if self._separate_projector else [])]
            names += ["scheduler", "runner"]
            names += [f"runner-{i}" for i in range(2, self._runners + 1)]
            names += ["billing", "drive"]
            for name in names:
                self._services[name] = self._make_service(name)
            # Popen returns as soon as the child is forked: the five interpreters start
            # (and import their dependencies) in parallel.
            t0 = time.monotonic()
            for svc in self._services.values():
                self._spawn(svc)
            self._progress(f"services starting: {', '.join(self._services)}")
            self._wait_ready(list(self._services.values()), deadline, timeout)
            self._progress(
                f"services ready ({time.monotonic() - t0:.1f}s); gateway at {self.api_base}"
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _start_infra(self, timeout: float) -> None:
        nats = NatsServer(
            store_dir=self.work_dir / "nats",
            log_file=self.logs_dir / "nats-server.log",
            passwords=self._nats_passwords,
        )
        self.nats = nats
        pg: PostgresServer | None = None
        if self._external_db is None:
            pg = PostgresServer(
                data_dir=self.work_dir / "postgres",
                fsync=self._fsync,
                log_file=self.logs_dir / "postgres.log",
            )
            self.postgres = pg
        t0 = time.monotonic()

        def start_nats() -> None:
            with _explained("nats-server", self.logs_dir / "nats-server.log"):
                nats.start(timeout=timeout)

        def start_pg() -> str:
            assert pg is not None
            with _explained("postgres", self.logs_dir / "postgres.log"):
                pg.start(timeout=timeout)
                return pg.ensure_database(DATABASE)

        # Both are I/O-bound waits on child processes: two threads halve the start-up.
        # Leaving the `with` waits for both, so a failure of one (or Ctrl-C) never leaves
        # the other half-started behind stop().
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="puras-infra") as pool:
            nats_started = pool.submit(start_nats)
            pg_started = pool.submit(start_pg) if pg is not None else None
            nats_started.result()
            self._database_url = (
                pg_started.result() if pg_started is not None else self._external_db
            )
        self._save_pids()
        with _explained("the services' Postgres roles", self.logs_dir / "postgres.log"):
            provision_roles_sync(self.database_url, self._db_passwords)
        where = "embedded Postgres" if pg is not None else "the given database"
        self._progress(f"nats-server and {where} up ({time.monotonic() - t0:.1f}s): {nats.address}")

    def _base_env(self) -> dict[str, str]:
        # Credentials this process may hold (an exported dev.env, DATABASE_URL) are not
        # handed down: each service gets its own below, and only its own.
        env = {k: v for k, v in os.environ.items() if not _is_credential_var(k)}
        env.update(
            {
                "PURAS_ENV": "dev",
                "PURAS_NATS_URL": self.nats_address,
                "PURAS_GATEWAY_HOST": "127.0.0.1",
                "PURAS_GATEWAY_PORT": str(self._require_port()),
                "PURAS_DRIVE_ROOT": str(self.work_dir / "drive"),
                "PURAS_RUNNER_DATA_DIR": str(self.work_dir / "runner"),
                "PURAS_LOG_FORMAT": "json",
                # Logs reach the file as they are written, not when a buffer fills.
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _make_service(self, name: str) -> _Service:
        process = name.split("-", 1)[0]
        # A process of another service runs as that service, from its own script.
        kind, script_name = PROCESS_OF.get(process, (process, f"puras-{process}"))
        script = self._bin_dir / script_name
        if not script.exists():
            raise StackError(
                f"{script} does not exist: the workspace is not installed in this venv "
                "(run ./dev, which syncs it)"
            )
        env = self._base_env()
        env[f"PURAS_{kind.upper()}_NATS_USER"] = kind
        env[f"PURAS_{kind.upper()}_NATS_PASSWORD"] = self._nats_passwords[kind]
        if kind in DB_ROLES:
            env[f"PURAS_{kind.upper()}_DATABASE_URL"] = role_url(
                self.database_url, DB_ROLES[kind].role
            )
            env[f"PURAS_{kind.upper()}_DATABASE_PASSWORD"] = self._db_passwords[kind]
        if process == "gateway":
            env["PURAS_GATEWAY_ADMIN_TOKEN"] = self._admin_token
            env["PURAS_GATEWAY_DRIVE_URL"] = f"http://127.0.0.1:{self._drive_http_port()}"
            env["PURAS_GATEWAY_DRIVE_TOKEN"] = self._drive_token
            env["PURAS_GATEWAY_WORKERS"] = str(self._gateway_workers)
            # With a projector process the API's event loop serves requests only.
            env["PURAS_GATEWAY_RUN_PROJECTORS"] = "false" if self._separate_projector else "true"
        if process in _SECRETS_KEY_HOLDERS:
            env.update(self._secrets_env(kind))
        if kind == "drive":
            env["PURAS_DRIVE_HTTP_HOST"] = "127.0.0.1"
            env["PURAS_DRIVE_HTTP_PORT"] = str(self._drive_http_port())
            env["PURAS_DRIVE_INTERNAL_TOKEN"] = self._drive_token
            env["PURAS_DRIVE_SIGNING_SECRET"] = self._drive_signing_secret
        if kind == "runner":
            # How jobs reach the API for media calls (the egress proxy allows exactly it).
            env["PURAS_RUNNER_API_URL"] = self.api_base
        if kind == "runner" and name != "runner":
            # Each extra runner gets its own data dir: nothing says two runners may build
            # the same deployment's venv in one directory at the same time.
            env["PURAS_RUNNER_DATA_DIR"] = str(self.work_dir / name)
        health_var = f"PURAS_{kind.upper()}_HEALTH_PORT"
        if process in HEALTH_SERVED_BY:
            env[f"PURAS_{kind.upper()}_HEALTH_HOST"] = "127.0.0.1"
            env[health_var] = str(free_port())
        env.update(self._env_overrides)
        if kind != "runner":
            # Model providers' keys and endpoints are the runner's alone (least privilege).
            for var in [v for v in env if _is_provider_var(v)]:
                del env[var]
        if process == "gateway" and name != "gateway":
            # A further replica: its own port and instance id, the same everything else.
            port = free_port()
            env["PURAS_GATEWAY_PORT"] = str(port)
            env["PURAS_GATEWAY_INSTANCE_ID"] = name
            health_base: str | None = f"http://127.0.0.1:{port}"
        elif process == "gateway":
            health_base = self.api_base
        elif env.get(health_var, "0") not in ("", "0"):
            health_base = f"http://127.0.0.1:{int(env[health_var])}"
        else:
            health_base = None
        return _Service(
            name=name,
            script=script,
            env=env,
            log_path=self.logs_dir / f"{name}.log",
            health_base=health_base,
        )

    def _drive_http_port(self) -> int:
        if not self._drive_port:
            self._drive_port = free_port()
        return self._drive_port

    def _spawn(self, svc: _Service) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with svc.log_path.open("ab") as log:
            log.write(f"--- {svc.name} started by the dev stack at {stamp} ---\n".encode())
            log.flush()
            svc.proc = subprocess.Popen(
                [str(svc.script)],
                cwd=self.work_dir,
                env=svc.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group (and session): signals go to the whole service,
                # and a Ctrl-C in the terminal reaches only us, who stop things in order.
                start_new_session=True,
            )
        svc.ref = proc_ref(svc.proc.pid)
        svc.expected_exit = False
        self._save_pids()

    def _wait_ready(self, services: list[_Service], deadline: float, timeout: float) -> None:
        """Until each service's ``/healthz`` and ``/readyz`` answer 200 (those without a
        health port: nothing to wait on), failing fast if any process of the stack exits."""
        with httpx.Client(timeout=5.0) as http:
            for svc in services:
                if svc.health_base is None:
                    continue
                for path in ("/healthz", "/readyz"):
                    self._wait_answer(http, svc, path, deadline, timeout)

    def _wait_answer(
        self, http: httpx.Client, svc: _Service, path: str, deadline: float, timeout: float
    ) -> None:
        last = "no answer yet"
        while True:
            self._raise_if_exited("while the stack was starting")
            try:
                resp = http.get(f"{svc.health_base}{path}")
                if resp.status_code == 200:
                    return
                last = f"{path} answered {resp.status_code}: {resp.text[:200]}"
            except httpx.TransportError as exc:
                last = f"{path}: {type(exc).__name__} {exc}"
            if time.monotonic() > deadline:
                raise StackError(
                    f"{svc.name} at {svc.health_base} was not ready after {timeout:.0f}s "
                    f"({last}); last lines of {svc.log_path}:\n{log_tail(svc.log_path)}"
                )
            # The answer is what we wait on; this only paces the retries while the port
            # is not open yet or readiness is still 503.
            time.sleep(0.05)

    def _infra_procs(self) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
        if self.nats is not None and self.nats.proc is not None:
            yield "nats-server", self.nats.proc, self.logs_dir / "nats-server.log"
        if self.postgres is not None and self.postgres.proc is not None:
            yield "postgres", self.postgres.proc, self.logs_dir / "postgres.log"

    def _unexpected_exits(self) -> list[str]:
        out = [
            name
            for name, svc in self._services.items()
            if svc.proc is not None and svc.proc.poll() is not None and not svc.expected_exit
        ]
        out += [name for name, proc, _ in self._infra_procs() if proc.poll() is not None]
        return out

    def describe_exit(self, name: str) -> str:
        """How ``name`` ended (exit code or signal), then the tail of its log."""
        if name in self._services:
            svc = self._services[name]
            code = svc.proc.returncode if svc.proc is not None else None
            log = svc.log_path
        else:
            found = {n: (p, lp) for n, p, lp in self._infra_procs()}
            proc, log = found[name]
            code = proc.returncode
        how = f"exited with code {code}"
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                how = f"was killed by {signal.Signals(-code).name}"
        return f"{name} {how}; last lines of {log}:\n{log_tail(log)}"

    @contextlib.contextmanager
    def explain_failures(self, when: str) -> Iterator[None]:
        """Around calls to the stack: a refused or timed-out call becomes a
        :class:`StackError` naming the service that died, with its log, rather than
        "is the stack running?". A dying process takes a moment to exit;
        :meth:`wait_for_exit` returns as soon as one has."""
        try:
            yield
        except (ApiUnreachable, ApiTimeout):
            self.wait_for_exit(timeout=5)
            self.check(when)
            raise

    def check(self, when: str = "the stack is broken") -> None:
        """Raise :class:`StackError` (exit codes, log tails) if a process of the stack
        exited without the stack stopping it; e.g. to explain a refused connection."""
        self._raise_if_exited(when)

    def _raise_if_exited(self, when: str) -> None:
        exited = self._unexpected_exits()
        if exited:
            raise StackError(f"{when}, " + "\n\n".join(self.describe_exit(name) for name in exited))

    # -- projects ---------------------------------------------------------------------------

    def client(self, api_key: str | None = None) -> PurasClient:
        """A client of this stack's gateway: with ``api_key``, else with the admin token."""
        return PurasClient(self.api_base, api_key or self._admin_token)

    def bootstrap_project(self, name: str = "dev", usd: int | str | Decimal = 10) -> DevProject:
        """Create a project, its first API key and ``usd`` of credit, over the admin API."""
        with self.client() as admin:
            project_id = api.create_project(admin, name)
            key = api.create_project_key(admin, project_id)
            api.grant_credits(admin, project_id, micros=api.usd_to_micros(usd))
        return DevProject(project_id=project_id, api_key=str(key["key"]))

    # -- supervision ----------------------------------------------------------------------

    def _service(self, name: str) -> _Service:
        try:
            return self._services[name]
        except KeyError:
            raise StackError(
                f"no service {name!r} in this stack (have: {', '.join(self._services)})"
            ) from None

    def service_pids(self) -> dict[str, int]:
        """Pids of the services running now (killed or exited ones are left out)."""
        return {
            name: svc.proc.pid
            for name, svc in self._services.items()
            if svc.proc is not None and svc.running
        }

    def kill_service(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to the service's process group, as a crash or an operator would.

        For a terminating signal, waits until the process has exited. Processes it left
        in other sessions (a runner's jobs) are not touched here, as after a real crash;
        :meth:`stop` ends them.
        """
        svc = self._service(name)
        if svc.proc is None or not svc.running:
            raise StackError(f"{name} is not running")
        terminating = sig in _TERMINATING
        if terminating:
            svc.expected_exit = True
            self._orphans += descendants(svc.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(svc.proc.pid, sig)
        if terminating:
            try:
                svc.proc.wait(timeout=STOP_GRACE_S + 5)
            except subprocess.TimeoutExpired as exc:
                raise StackError(f"{name} did not exit after {sig.name}") from exc

    def start_service(self, name: str, *, timeout: float = 60.0) -> None:
        """Start a stopped or killed service again; returns once it is ready."""
        svc = self._service(name)
        if svc.running:
            raise StackError(f"{name} is already running")
        self._spawn(svc)
        self._wait_ready([svc], time.monotonic() + timeout, timeout)

    @property
    def secrets_key(self) -> str:
        """The master key project secrets are sealed under in this stack."""
        return self._secrets_key

    def _secrets_env(self, kind: str) -> dict[str, str]:
        prefix = f"PURAS_{kind.upper()}_"
        return {
            f"{prefix}SECRETS_KEY": self._secrets_key,
            f"{prefix}SECRETS_PREVIOUS_KEYS": ",".join(self._secrets_previous),
        }

    def set_secrets_keys(self, current: str, previous: Collection[str] = ()) -> None:
        """Give the gateways and runners these master keys from their next (re)start:
        the steps of a key rotation (docs/operations.md)."""
        self._secrets_key = current
        self._secrets_previous = tuple(previous)
        for svc in self._services.values():
            kind = svc.name.split("-", 1)[0]
            if kind in _SECRETS_KEY_HOLDERS:
                svc.env.update(self._secrets_env(kind))

    def restart_service(self, name: str, *, timeout: float = 60.0) -> None:
        """Stop the service gracefully (SIGTERM, then SIGKILL after a grace) and start it."""
        svc = self._service(name)
        if svc.running:
            self._stop_services([svc])
        self.start_service(name, timeout=timeout)

    def add_runner(self) -> str:
        """Start one more runner (``runner-2``, ``runner-3``, ...); returns its name once
        it is ready (at once if the runner has no health port to ask)."""
        return self.add_replica("runner")

    def add_replica(self, kind: str) -> str:
        """Start one more replica of a service (``gateway-2``, ``scheduler-2``, ...) on
        the same NATS and Postgres; returns its name once it is ready. A gateway replica
        listens on a port of its own: :meth:`api_base_of` gives its address."""
        if kind not in SERVICES:
            raise StackError(f"no service kind {kind!r} (have: {', '.join(SERVICES)})")
        if not self._services:
            raise StackError("the stack is not started")
        n = 2
        while f"{kind}-{n}" in self._services:
            n += 1
        name = f"{kind}-{n}"
        svc = self._make_service(name)
        self._services[name] = svc
        self._spawn(svc)
        self._wait_ready([svc], time.monotonic() + 60.0, 60.0)
        return name

    def api_base_of(self, name: str) -> str:
        """The API address of gateway replica ``name`` (``gateway``: :attr:`api_base`)."""
        svc = self._service(name)
        if not name.startswith("gateway") or svc.health_base is None:
            raise StackError(f"{name} is not a gateway")
        return svc.health_base

    def wait_for_exit(
        self, timeout: float | None = None, *, ignore: Collection[str] = ()
    ) -> str | None:
        """Block until a process of the stack exits on its own; its name, or ``None``.

        Services stopped or killed through this class are not reported, nor those in
        ``ignore`` (exits a supervisor already knows of). Waits on pidfds (Linux), so
        nothing polls; elsewhere it checks twice a second.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            exited = [n for n in self._unexpected_exits() if n not in ignore]
            if exited:
                return exited[0]
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return None
            procs = [s.proc for s in self._services.values() if s.running and s.proc]
            procs += [p for _, p, _ in self._infra_procs() if p.poll() is None]
            if not procs:
                return None  # nothing left that could exit
            if not self._select_exits(procs, remaining):
                # No pidfds here (not Linux, or a kernel before 5.3): check twice a second.
                time.sleep(0.5 if remaining is None else min(0.5, remaining))

    @staticmethod
    def _select_exits(procs: list[subprocess.Popen[bytes]], timeout: float | None) -> bool:
        """Wait until one of ``procs`` exits or ``timeout`` passes; False if unsupported."""
        pidfd_open = getattr(os, "pidfd_open", None)
        if pidfd_open is None:
            return False
        fds: list[int] = []
        with selectors.DefaultSelector() as sel:
            try:
                for proc in procs:
                    try:
                        fd = pidfd_open(proc.pid)
                    except ProcessLookupError:
                        return True  # already gone: let the caller look
                    except OSError:
                        return False
                    fds.append(fd)
                    sel.register(fd, selectors.EVENT_READ)
                # A pidfd turns readable when its process exits; the caller then checks
                # which one did, and whether the stack meant it to.
                sel.select(timeout)
            finally:
                for fd in fds:
                    os.close(fd)
        return True

    # -- stop -----------------------------------------------------------------------------

    def _stop_services(self, services: list[_Service]) -> None:
        running = [s for s in services if s.proc is not None and s.running]
        trees: list[ProcRef] = []
        for svc in running:
            assert svc.proc is not None
            svc.expected_exit = True
            # Before the signal: once the service is gone its children are re-parented
            # and can no longer be found from it.
            trees += descendants(svc.proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(svc.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for svc in running:
            assert svc.proc is not None
            try:
                svc.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self._progress(f"{svc.name} did not stop in {STOP_GRACE_S:.0f}s: killing it")
        for svc in services:
            if svc.proc is None:
                continue
            # The whole group, also when its leader exited but left members behind.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(svc.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                svc.proc.wait(timeout=5)
        signal_refs(trees, signal.SIGKILL)

    def stop(self) -> None:
        """Stop services (SIGTERM, then SIGKILL), then nats-server and Postgres.

        Idempotent; afterwards no process the stack started is left running.
        """
        if not self._started:
            return
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)
        self._stop_services(list(self._services.values()))
        signal_refs(self._orphans, signal.SIGKILL)
        self._orphans.clear()
        if self.nats is not None:
            self.nats.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self._pids_written:
            # Only our own: a start refused because another stack runs here leaves its file.
            (self.work_dir / _PIDS_FILE).unlink(missing_ok=True)
            self._pids_written = False
        self._started = False

    # -- leftovers of a run that did not stop (killed -9, a closed terminal) ------------

    def _save_pids(self) -> None:
        refs: dict[str, list[int]] = {}
        owner = proc_ref(os.getpid())
        if owner is not None:
            refs[_OWNER] = [owner.pid, owner.start_ticks]
        for name, svc in self._services.items():
            if svc.ref is not None:
                refs[name] = [svc.ref.pid, svc.ref.start_ticks]
        for name, proc, _ in self._infra_procs():
            ref = proc_ref(proc.pid)
            if ref is not None:
                refs[name] = [ref.pid, ref.start_ticks]
        (self.work_dir / _PIDS_FILE).write_text(json.dumps(refs))
        self._pids_written = True

    def claim_work_dir(self) -> None:
        """See :func:`claim_work_dir`; :meth:`start` calls it first."""
        claim_work_dir(self.work_dir, self._progress)

    # -- context manager ----------------------------------------------------------------

    def __enter__(self) -> Stack:
        if not self._started:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
