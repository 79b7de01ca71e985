"""``puras deployments list|activate|delete`` (P3)."""

from __future__ import annotations

import click

from puras_cli import api
from puras_cli.context import CliContext, emit

__all__ = ["deployments"]


@click.group()
def deployments() -> None:
    """The project's deployments (newest first); activate one to roll forward or back."""


@deployments.command("list")
@click.pass_obj
def list_(obj: CliContext) -> None:
    """List deployments, newest first."""
    with obj.api_client() as client:
        emit(api.list_deployments(client))


@deployments.command()
@click.argument("deployment_id")
@click.pass_obj
def activate(obj: CliContext, deployment_id: str) -> None:
    """Make DEPLOYMENT_ID the active deployment (jobs already submitted keep theirs)."""
    with obj.api_client() as client:
        emit(api.activate_deployment(client, deployment_id))


@deployments.command()
@click.argument("deployment_id")
@click.pass_obj
def delete(obj: CliContext, deployment_id: str) -> None:
    """Delete DEPLOYMENT_ID (the active one is refused)."""
    with obj.api_client() as client:
        emit(api.delete_deployment(client, deployment_id))
