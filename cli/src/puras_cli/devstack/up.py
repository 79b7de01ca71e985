"""``puras dev up``: the whole stack in the foreground, with data kept between runs.

Everything lives in ``<repo>/.puras/``:

* ``stack/``: the stack's work dir (Postgres data, nats store, drive, runner cache, logs),
  plus ``admin_token``, ``secrets_key`` and ``project.env`` (mode 600), kept so that a
  restart keeps the same admin token, the project secrets readable, the same dev project
  and, when free, the same port.
* ``dev.env`` (mode 600): the live stack's address and credentials, written only once the
  gateway answers and removed when the stack stops, so that a ``puras`` command never
  reads the address of a stack that is not there.

While it runs, :func:`supervise` restarts a service that exits (crash, OOM kill, a bug),
after printing which one, how it ended and the tail of its log; the delay doubles from
0.5 s to 30 s while it keeps failing and starts over once it stayed up a minute. Only
nats-server or Postgres exiting stops the stack: they hold the data, and the services
reconnect to them, not the other way round.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import click

from puras_cli import api
from puras_cli.client import ApiError
from puras_cli.config import format_env_file, parse_env_file, write_private_file
from puras_cli.devstack.signals import ignoring_interrupts, terminate_as_interrupt
from puras_cli.devstack.stack import DevProject, Stack, StackError, claim_work_dir
from puras_common.secret_box import generate_key

__all__ = ["INFRA", "DevPaths", "port_is_free", "run_up", "supervise"]

Echo = Callable[..., None]

INFRA: frozenset[str] = frozenset({"nats-server", "postgres"})
"""Processes of the stack whose exit is fatal (not restarted)."""


def supervise(
    stack: Stack,
    echo: Echo = click.echo,
    *,
    first_delay: float = 0.5,
    max_delay: float = 30.0,
    stable_s: float = 60.0,
    should_stop: Callable[[], bool] | None = None,
    check_every: float | None = None,
) -> str | None:
    """Keep the services of ``stack`` running until nats-server or Postgres exits.

    A service that exits on its own is reported (exit code or signal, log tail) and
    started again after a delay: ``first_delay``, doubling up to ``max_delay`` while it
    keeps failing, back to ``first_delay`` once it ran ``stable_s``. Services the stack
    stopped or killed on purpose (``kill_service``) are left alone. Returns the name of
    the infrastructure process that exited; ``None`` once ``should_stop()`` (checked at
    least every ``check_every`` seconds) is true or nothing is left to wait on. Ctrl-C
    (KeyboardInterrupt) propagates.
    """

    def say(msg: str) -> None:
        echo(f"[up] {msg}", err=True)

    begun = time.monotonic()
    last_start: dict[str, float] = {}
    delays: dict[str, float] = {}
    due: dict[str, float] = {}
    while should_stop is None or not should_stop():
        now = time.monotonic()
        wait = max(0.0, min(due.values()) - now) if due else None
        if check_every is not None:
            wait = check_every if wait is None else min(wait, check_every)
        died = stack.wait_for_exit(timeout=wait, ignore=set(due))
        if died is not None:
            if died in INFRA:
                return died
            now = time.monotonic()
            ran = now - last_start.get(died, begun)
            previous = delays.get(died)
            delay = first_delay if previous is None or ran >= stable_s else previous * 2
            delays[died] = delay = min(delay, max_delay)
            due[died] = now + delay
            say(f"{stack.describe_exit(died)}")
            say(f"restarting {died} in {delay:g}s (it ran {ran:.1f}s)")
            continue
        if wait is None and not due and check_every is None:
            return None  # nothing left that could exit
        for name in sorted(n for n, t in due.items() if t <= time.monotonic()):
            del due[name]
            last_start[name] = time.monotonic()
            try:
                stack.start_service(name)
            except StackError as exc:
                # It exited again before it was ready, or another process did: the next
                # wait reports whichever exited (with its log), with a longer delay.
                say(f"{name} is not ready after a restart: {str(exc).splitlines()[0]}")
                continue
            say(f"{name} restarted and ready")
    return None


class DevPaths:
    """The files of ``./dev up`` under a repository root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.puras_dir = root / ".puras"
        self.stack_dir = self.puras_dir / "stack"
        self.dev_env = self.puras_dir / "dev.env"
        self.admin_token = self.stack_dir / "admin_token"
        self.secrets_key = self.stack_dir / "secrets_key"
        self.project_env = self.stack_dir / "project.env"
        self.gateway_port = self.stack_dir / "gateway_port"


def port_is_free(port: int) -> bool:
    """Whether the gateway could bind 127.0.0.1:port now (it sets SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _secrets_key(paths: DevPaths) -> str:
    # The master key of project secrets: a new one at each start would leave every
    # secret set before it unreadable.
    try:
        key = paths.secrets_key.read_text().strip()
    except FileNotFoundError:
        key = ""
    if not key:
        key = generate_key()
        write_private_file(paths.secrets_key, key + "\n")
    return key


def _admin_token(paths: DevPaths) -> str:
    try:
        token = paths.admin_token.read_text().strip()
    except FileNotFoundError:
        token = ""
    if not token:
        token = secrets.token_urlsafe(32)
        write_private_file(paths.admin_token, token + "\n")
    return token


def _gateway_port(paths: DevPaths, requested: int | None) -> int:
    if requested:
        if not port_is_free(requested):
            raise click.UsageError(f"port {requested} is in use on 127.0.0.1; pick another")
        return requested
    with contextlib.suppress(OSError, ValueError):
        previous = int(paths.gateway_port.read_text().strip())
        if port_is_free(previous):
            return previous
    return 0  # a free one, chosen by the stack


def _saved_project(paths: DevPaths) -> DevProject | None:
    # dev.env first: a run that was killed left it, and it is what the user last saw.
    for path in (paths.dev_env, paths.project_env):
        with contextlib.suppress(OSError):
            values = parse_env_file(path.read_text())
            if values.get("PURAS_PROJECT_ID") and values.get("PURAS_API_KEY"):
                return DevProject(values["PURAS_PROJECT_ID"], values["PURAS_API_KEY"])
    return None


def _project_exists(stack: Stack, project: DevProject) -> bool:
    """The key still opens its project: ``GET /v1/deployments`` answers 200."""
    with stack.client(project.api_key) as client:
        try:
            api.list_deployments(client)
        except ApiError as exc:
            if exc.status in (401, 403, 404):
                return False
            raise
    return True


DEV_ENV_HEADER = """The running dev stack (./dev up); removed when it stops. Every variable is
described in docs/dev-stack.md. Use: source .puras/dev.env"""


def _env_values(stack: Stack, project: DevProject) -> Mapping[str, str]:
    return {
        "PURAS_API_BASE": stack.api_base,
        "PURAS_API_KEY": project.api_key,
        "PURAS_PROJECT_ID": project.project_id,
        "PURAS_ADMIN_TOKEN": stack.admin_token,
        # For operator commands that read the log and the projections directly.
        "PURAS_NATS_URL": stack.nats_url,
        "PURAS_DATABASE_URL": stack.database_url,
    }


def _banner(paths: DevPaths, stack: Stack, project: DevProject, reused: bool, echo: Echo) -> None:
    rel_logs = stack.logs_dir.relative_to(paths.root)
    rel_env = paths.dev_env.relative_to(paths.root)
    key_hint = project.api_key.split(".", 1)[0] + ".…"
    echo("")
    echo("Puras dev stack is up. Ctrl-C stops it.")
    echo(f"  API base   {stack.api_base}")
    echo(f"  dashboard  {stack.api_base}/ (sign in with the project key from the env file)")
    echo(f"  project    {project.project_id} ({'reused' if reused else 'new'}, key {key_hint})")
    echo(f"  env        {rel_env} (API base, key, project id, admin token; mode 600)")
    echo(f"  logs       {rel_logs}/<service>.log")
    echo("  try        .venv/bin/puras push examples/quickstart")
    echo("             .venv/bin/puras jobs submit echo --input text=hi --wait")
    echo(
        f'             source {rel_env} && curl -H "Authorization: Bearer $PURAS_API_KEY" '
        "$PURAS_API_BASE/v1/jobs"
    )
    echo("")


def run_up(
    root: Path, *, port: int | None = None, runners: int = 1, echo: Echo = click.echo
) -> int:
    """Run the stack until Ctrl-C/SIGTERM (0) or until nats-server or Postgres dies (1);
    a service that dies is restarted (:func:`supervise`)."""
    paths = DevPaths(root)
    paths.stack_dir.mkdir(parents=True, exist_ok=True)

    def progress(msg: str) -> None:
        echo(f"[up] {msg}", err=True)

    # Refused here (StackBusy) while another `./dev up` runs from this checkout: its
    # dev.env and its port must stay untouched. Past this point the stack dir is ours.
    claim_work_dir(paths.stack_dir, progress)
    stack = Stack(
        paths.stack_dir,
        runners=runners,
        admin_token=_admin_token(paths),
        secrets_key=_secrets_key(paths),
        gateway_port=_gateway_port(paths, port),
        progress=progress,
    )
    saved = _saved_project(paths)
    # Whatever dev.env says now is about an earlier stack: gone until this one answers.
    paths.dev_env.unlink(missing_ok=True)
    with terminate_as_interrupt():
        try:
            t0 = time.monotonic()
            stack.start()
            paths.gateway_port.write_text(f"{stack.gateway_port}\n")
            with stack.explain_failures("a service stopped while the dev project was set up"):
                reused = saved is not None and _project_exists(stack, saved)
                project = saved if reused and saved is not None else stack.bootstrap_project("dev")
            values = _env_values(stack, project)
            write_private_file(
                paths.project_env,
                format_env_file({k: values[k] for k in ("PURAS_PROJECT_ID", "PURAS_API_KEY")}),
            )
            write_private_file(paths.dev_env, format_env_file(values, header=DEV_ENV_HEADER))
            progress(f"up in {time.monotonic() - t0:.1f}s")
            _banner(paths, stack, project, reused, echo)
            died = supervise(stack, echo)
            if died is None:
                return 0
            echo(f"error: {stack.describe_exit(died)}", err=True)
            echo("stopping the stack", err=True)
            return 1
        except KeyboardInterrupt:
            echo("", err=True)
            progress("stopping the stack")
            return 0
        finally:
            paths.dev_env.unlink(missing_ok=True)
            with ignoring_interrupts():
                stack.stop()
            progress("stopped")
