"""``puras keys create|list|revoke``, with the project's own key."""

from __future__ import annotations

import click

from puras_cli import api
from puras_cli.commands.output import Column, output_option, print_json, print_table
from puras_cli.context import CliContext

__all__ = ["confirm_revoke", "key_prefix", "keys"]

KEY_COLUMNS = (
    Column("PREFIX", "prefix"),
    Column("CREATED", "created_at"),
    Column("LAST USED", "last_used_at"),
    Column("SPEND LIMIT", "spend_limit"),
)


def key_prefix(key: str) -> str | None:
    """The prefix of a ``puras_live_<prefix>.<secret>`` key, ``None`` for another shape."""
    head, dot, _ = key.partition(".")
    if not dot or not head.startswith("puras_live_"):
        return None
    return head.removeprefix("puras_live_") or None


def confirm_revoke(obj: CliContext, prefix: str, yes: bool) -> None:
    """Ask before revoking the key this command runs with (it would lock the user out);
    without a terminal to ask on, refuse unless ``yes``."""
    if yes or key_prefix(obj.config.api_key or "") != prefix:
        return
    if not obj.interactive():
        raise click.UsageError(
            f"{prefix} is the key in use (PURAS_API_KEY); pass --yes to revoke it anyway"
        )
    click.confirm(
        f"{prefix} is the key in use (PURAS_API_KEY); every call with it fails once "
        "revoked. Revoke it?",
        abort=True,
    )


@click.group()
def keys() -> None:
    """The project's API keys."""


@keys.command()
@click.pass_obj
def create(obj: CliContext) -> None:
    """Create a key; the full key is shown once, keep it."""
    with obj.api_client() as client:
        print_json(api.create_key(client))


@keys.command("list")
@output_option
@click.pass_obj
def list_(obj: CliContext, output: str) -> None:
    """List keys (prefixes only)."""
    with obj.api_client() as client:
        out = api.list_keys(client)
    if output == "json":
        print_json(out)
    else:
        print_table(out.get("keys") or [], KEY_COLUMNS, empty="no keys")


@keys.command()
@click.argument("prefix")
@click.option("--yes", "-y", is_flag=True, help="Revoke the key in use without asking.")
@click.pass_obj
def revoke(obj: CliContext, prefix: str, yes: bool) -> None:
    """Revoke the key with PREFIX; it fails at once.

    Revoking the key this command runs with (PURAS_API_KEY) locks you out until you set
    another: it asks first, unless --yes.
    """
    confirm_revoke(obj, prefix, yes)
    with obj.api_client() as client:
        print_json(api.revoke_key(client, prefix))
