"""``puras deployments list|activate|delete``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from puras_cli import api
from puras_cli.commands.output import Column, output_option, print_json, print_table
from puras_cli.context import CliContext

__all__ = ["deployments"]


def _skills(d: Mapping[str, Any]) -> str:
    return ",".join(str(s.get("name")) for s in d.get("skills") or [] if isinstance(s, Mapping))


DEPLOYMENT_COLUMNS = (
    Column("ID", "id"),
    Column("ACTIVE", "active"),
    # Builds (status, error) come from gateways that build at push time; "-" otherwise.
    Column("STATUS", "status"),
    Column("CREATED", "created_at"),
    Column("SKILLS", _skills),
    Column("NOTES", "notes"),
    Column("ERROR", "error"),
)


@click.group()
def deployments() -> None:
    """The project's deployments (newest first); activate one to roll forward or back."""


@deployments.command("list")
@output_option
@click.pass_obj
def list_(obj: CliContext, output: str) -> None:
    """List deployments, newest first."""
    with obj.api_client() as client:
        out = api.list_deployments(client)
    if output == "json":
        print_json(out)
    else:
        print_table(out.get("deployments") or [], DEPLOYMENT_COLUMNS, empty="no deployments")


@deployments.command()
@click.argument("deployment_id")
@click.pass_obj
def activate(obj: CliContext, deployment_id: str) -> None:
    """Make DEPLOYMENT_ID the active deployment (jobs already submitted keep theirs)."""
    with obj.api_client() as client:
        print_json(api.activate_deployment(client, deployment_id))


@deployments.command()
@click.argument("deployment_id")
@click.pass_obj
def delete(obj: CliContext, deployment_id: str) -> None:
    """Delete DEPLOYMENT_ID (the active one is refused)."""
    with obj.api_client() as client:
        print_json(api.delete_deployment(client, deployment_id))
