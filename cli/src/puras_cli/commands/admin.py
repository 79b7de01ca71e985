"""``puras admin ...``: operator calls with the admin token (T3, B4)."""

from __future__ import annotations

from collections.abc import Iterable

import click

from puras_cli import api
from puras_cli.client import PurasError
from puras_cli.commands import admin_audit, admin_quarantine, admin_rebuild, admin_secrets
from puras_cli.context import CliContext, emit

__all__ = ["admin", "build_admin"]


@click.group()
def project() -> None:
    """Projects."""


@project.command("create")
@click.argument("name")
@click.pass_obj
def project_create(obj: CliContext, name: str) -> None:
    """Create a project named NAME; prints its id."""
    with obj.admin_client() as client:
        emit({"id": api.create_project(client, name)})


@click.group()
def key() -> None:
    """A project's first API key."""


@key.command("create")
@click.argument("project_id")
@click.pass_obj
def key_create(obj: CliContext, project_id: str) -> None:
    """Create an API key of PROJECT_ID; the full key is shown once."""
    with obj.admin_client() as client:
        emit(dict(api.create_project_key(client, project_id)))


@click.group()
def credits() -> None:
    """Project credit (B4)."""


@credits.command("grant")
@click.argument("project_id")
@click.option("--usd", metavar="N", help="Dollars, up to 6 decimals (e.g. 10 or 0.25).")
@click.option("--micros", type=click.IntRange(min=1), help="Micros (1 USD = 1,000,000).")
@click.pass_obj
def credits_grant(obj: CliContext, project_id: str, usd: str | None, micros: int | None) -> None:
    """Add credit to PROJECT_ID (exactly one of --usd and --micros)."""
    if usd is not None and micros is None:
        try:
            amount = api.usd_to_micros(usd)
        except PurasError as exc:
            raise click.BadParameter(exc.message, param_hint="--usd") from exc
    elif micros is not None and usd is None:
        amount = micros
    else:
        raise click.UsageError("give exactly one of --usd and --micros")
    with obj.admin_client() as client:
        emit(api.grant_credits(client, project_id, micros=amount))


def build_admin(extra: Iterable[click.Command] = ()) -> click.Group:
    """The ``admin`` group: projects, keys, credits, and the commands of ``extra``."""
    group = click.Group("admin", help="Operator commands (need PURAS_ADMIN_TOKEN).")
    for command in (project, key, credits, *extra):
        group.add_command(command)
    return group


admin = build_admin(
    (
        *admin_rebuild.COMMANDS,
        *admin_quarantine.COMMANDS,
        *admin_audit.COMMANDS,
        *admin_secrets.COMMANDS,
    )
)
