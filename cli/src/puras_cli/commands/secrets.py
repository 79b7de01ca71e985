"""``puras secrets set|list|rm`` (X1): the project's secrets, by name.

A value is never a command-line argument (it would sit in the shell's history and in
every process listing): ``set`` reads it from stdin when something is piped in, else
from a hidden prompt typed twice. It is never printed; the API answers with names and
times only.
"""

from __future__ import annotations

import sys

import click

from puras_cli import api
from puras_cli.client import PurasError
from puras_cli.commands.output import Column, output_option, print_table
from puras_cli.context import CliContext, emit
from puras_client.calls import check_secret_name

__all__ = ["read_secret_value", "secrets"]


def read_secret_value(obj: CliContext, name: str) -> str:
    """The value from piped stdin (one trailing newline dropped, as ``echo`` adds it), or
    typed at a hidden prompt; never echoed."""
    if obj.interactive():
        value = click.prompt(
            f"Value of {name}",
            hide_input=True,
            confirmation_prompt=True,
            prompt_suffix=" (hidden): ",
            err=True,
        )
    else:
        value = sys.stdin.read()
        if value.endswith("\r\n"):
            value = value[:-2]
        elif value.endswith("\n"):
            value = value[:-1]
    if not value:
        raise PurasError(
            f"no value for {name}: pipe it in (puras secrets set {name} < file) "
            "or type it at the prompt"
        )
    return str(value)


SECRET_COLUMNS = (
    Column("NAME", "name"),
    Column("CREATED", "created_at"),
    Column("UPDATED", "updated_at"),
)


@click.group()
def secrets() -> None:
    """The project's secrets (injected into jobs as environment variables)."""


@secrets.command("set")
@click.argument("name")
@click.pass_obj
def set_(obj: CliContext, name: str) -> None:
    """Create or overwrite NAME; the value comes from stdin or a hidden prompt.

    \b
      puras secrets set OPENAI_API_KEY            # prompts, input hidden
      puras secrets set OPENAI_API_KEY < key.txt  # or piped in
    """
    check_secret_name(name)  # before asking for a value it could not store
    value = read_secret_value(obj, name)
    with obj.api_client() as client:
        emit(api.set_secret(client, name, value))


@secrets.command("list")
@output_option
@click.pass_obj
def list_(obj: CliContext, output: str) -> None:
    """List the secrets' names (values are never shown)."""
    with obj.api_client() as client:
        out = api.list_secrets(client)
    if output == "json":
        emit(out)
        return
    rows = [r if isinstance(r, dict) else {"name": r} for r in out.get("secrets") or []]
    print_table(rows, SECRET_COLUMNS, empty="no secrets")


@secrets.command("rm")
@click.argument("name")
@click.pass_obj
def rm(obj: CliContext, name: str) -> None:
    """Delete the secret NAME."""
    check_secret_name(name)
    with obj.api_client() as client:
        emit(api.delete_secret(client, name))
