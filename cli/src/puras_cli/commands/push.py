"""``puras push DIR``: zip a project directory and create a deployment (P1, P4, Z7).

Progress goes to stderr (stage lines, a spinner on a terminal) so that stdout stays the
deployment as the API answers it. A bundle with a ``requirements.txt`` is built by a
runner before it can be activated: the push is sent with ``wait=false`` and the command
follows the deployment's ``status`` until the build is over (and, with ``--activate``,
until the runner has activated it). A failed build exits 1 with uv's message.
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path
from typing import Any, Final

import click

from puras_cli import api
from puras_cli.client import PurasClient, PurasError
from puras_cli.context import CliContext, emit
from puras_client.calls import Call

__all__ = ["push"]

POLL_S: Final = 0.5
ACTIVATION_GRACE_S: Final = 30.0
"""How long a built deployment may take to become active once it is ready (the runner
records the build, then the activation)."""
SPINNER: Final = "|/-\\"


class Progress:
    """Stage lines on stderr; a spinner while waiting when stderr is a terminal."""

    def __init__(self, quiet: bool) -> None:
        self._quiet = quiet
        self._tty = sys.stderr.isatty()
        self._spin = itertools.cycle(SPINNER)
        self._waiting: str | None = None

    def stage(self, text: str) -> None:
        if self._quiet:
            return
        self._end_wait()
        click.echo(text, err=True)

    def waiting(self, text: str) -> None:
        """Called on each poll while ``text`` goes on."""
        if self._quiet:
            return
        if not self._tty:
            if self._waiting != text:
                self._waiting = text
                click.echo(f"{text}...", err=True)
            return
        self._waiting = text
        click.echo(f"\r{next(self._spin)} {text}", err=True, nl=False)

    def _end_wait(self) -> None:
        if self._tty and self._waiting is not None:
            click.echo("\r\033[K", err=True, nl=False)
        self._waiting = None

    def done(self) -> None:
        if not self._quiet:
            self._end_wait()


def _push_call(bundle: bytes, *, notes: str, activate: bool) -> Call:
    return Call(
        "POST",
        "/v1/deployments",
        files={"bundle": ("bundle.zip", bundle, "application/zip")},
        data={"notes": notes, "activate": "true" if activate else "false", "wait": "false"},
        # Validation and storage of a large bundle take longer than a plain call.
        timeout=120.0,
    )


def _deployment(client: PurasClient, dep_id: str) -> dict[str, Any]:
    listed = api.list_deployments(client)
    for dep in listed.get("deployments", []):
        if dep.get("id") == dep_id:
            return dict(dep)
    raise PurasError(f"deployment {dep_id} is no longer listed (was it deleted meanwhile?)")


def _follow_build(
    client: PurasClient, dep: dict[str, Any], *, activate: bool, timeout: float, p: Progress
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while dep.get("status") == "building":
        if time.monotonic() > deadline:
            raise PurasError(
                f"deployment {dep['id']} is still building after {timeout:.0f}s; follow it "
                "with `puras deployments list` (it is activated once built, if asked)"
            )
        p.waiting("building requirements.txt")
        time.sleep(POLL_S)
        dep = _deployment(client, dep["id"])
    if dep.get("status") == "failed":
        p.done()
        raise PurasError(
            f"the build of requirements.txt failed; deployment {dep['id']} was not activated. "
            f"Fix requirements.txt and push again.\n{dep.get('error') or ''}".rstrip()
        )
    p.stage("built requirements.txt")
    grace = time.monotonic() + ACTIVATION_GRACE_S
    while activate and not dep.get("active") and time.monotonic() < grace:
        p.waiting("activating")
        time.sleep(POLL_S)
        dep = _deployment(client, dep["id"])
    return dep


@click.command()
@click.argument("project_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--notes", default="", help="A note stored with the deployment.")
@click.option(
    "--activate/--no-activate",
    default=True,
    show_default=True,
    help="Make it the active deployment (new jobs use it at once; with a requirements.txt, "
    "once it is built).",
)
@click.option(
    "--build-timeout",
    type=click.FloatRange(min=1),
    default=900.0,
    show_default=True,
    help="Seconds to follow a requirements.txt build before giving up waiting.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress lines on stderr.")
@click.pass_obj
def push(
    obj: CliContext,
    project_dir: Path,
    notes: str,
    activate: bool,
    build_timeout: float,
    quiet: bool,
) -> None:
    """Push PROJECT_DIR (a folder with skills/<name>/skill.yaml) as a new deployment."""
    p = Progress(quiet)
    bundle = api.pack(project_dir)
    with obj.api_client() as client:
        p.stage(f"uploading bundle ({max(1, len(bundle) // 1024)} KB)")
        dep = client.call(_push_call(bundle, notes=notes, activate=activate))
        if isinstance(dep, dict) and dep.get("status") in ("building", "failed"):
            dep = _follow_build(client, dep, activate=activate, timeout=build_timeout, p=p)
        if isinstance(dep, dict) and "id" in dep:
            state = "active" if dep.get("active") else "not active"
            p.stage(f"deployment {dep['id']} {dep.get('status', 'ready')}, {state}")
        p.done()
        emit(dep)
