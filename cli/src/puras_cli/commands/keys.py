"""``puras keys create|list|revoke`` (T2), with the project's own key."""

from __future__ import annotations

import click

from puras_cli import api
from puras_cli.context import CliContext, emit

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """The project's API keys."""


@keys.command()
@click.pass_obj
def create(obj: CliContext) -> None:
    """Create a key; the full key is shown once, keep it."""
    with obj.api_client() as client:
        emit(api.create_key(client))


@keys.command("list")
@click.pass_obj
def list_(obj: CliContext) -> None:
    """List keys (prefixes only)."""
    with obj.api_client() as client:
        emit(api.list_keys(client))


@keys.command()
@click.argument("prefix")
@click.pass_obj
def revoke(obj: CliContext, prefix: str) -> None:
    """Revoke the key with PREFIX; it fails at once."""
    with obj.api_client() as client:
        emit(api.revoke_key(client, prefix))
