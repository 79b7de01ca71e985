"""The ``puras`` command: a client of the gateway's HTTP API, and the dev stack.

API errors print as ``error: <message>`` on stderr with exit status 1; usage errors are
click's (status 2).
"""

from __future__ import annotations

from typing import Any

import click

from puras_cli.client import PurasError
from puras_cli.commands.admin import admin
from puras_cli.commands.deployments import deployments
from puras_cli.commands.dev import dev
from puras_cli.commands.jobs import jobs
from puras_cli.commands.keys import keys
from puras_cli.commands.push import push
from puras_cli.commands.secrets import secrets
from puras_cli.commands.skills import skills
from puras_cli.commands.usage import balance, usage
from puras_cli.context import CliContext

__all__ = ["cli", "main"]


class _Group(click.Group):
    """The root group: renders every :class:`PurasError` the same way, wherever raised."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PurasError as exc:
            click.echo(f"error: {exc.message}", err=True)
            ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="puras-cli", prog_name="puras")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Puras from the command line.

    Reads PURAS_API_BASE, PURAS_API_KEY and PURAS_ADMIN_TOKEN from the environment, or
    else from the .puras/dev.env that ./dev up writes (here or in a parent directory).
    """
    if ctx.obj is None:
        ctx.obj = CliContext()


for _command in (push, deployments, skills, jobs, keys, secrets, usage, balance, admin, dev):
    cli.add_command(_command)


def main() -> None:
    cli()
