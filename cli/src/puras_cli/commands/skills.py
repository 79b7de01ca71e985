"""``puras skills list``: the active deployment's skills with their schemas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from puras_cli.commands.output import Column, output_option, print_json, print_table
from puras_cli.context import CliContext
from puras_client import calls

__all__ = ["skills"]


def _fields(schema: Any) -> str:
    """``name*, n`` for an object schema (``*``: required), ``-`` without one."""
    if not isinstance(schema, Mapping):
        return "-"
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return str(schema.get("type", "-"))
    required = set(schema.get("required") or [])
    return ", ".join(f"{k}*" if k in required else str(k) for k in props) or "-"


SKILL_COLUMNS = (
    Column("NAME", "name"),
    Column("KIND", "kind"),
    Column("INPUTS", lambda s: _fields(s.get("input_schema"))),
    Column("OUTPUTS", lambda s: _fields(s.get("output_schema"))),
    Column("DESCRIPTION", "description"),
)


@click.group()
def skills() -> None:
    """The skills jobs can run."""


@skills.command("list")
@output_option
@click.pass_obj
def list_(obj: CliContext, output: str) -> None:
    """List the active deployment's skills; inputs marked * are required, -o json shows
    the full input and output schemas."""
    with obj.api_client() as client:
        out = client.call(calls.list_skills())
    if output == "json":
        print_json(out)
        return
    if out.get("deployment_id") is None:
        click.echo("no active deployment: push one with puras push DIR")
        return
    print_table(out.get("skills") or [], SKILL_COLUMNS, empty="no skills")
