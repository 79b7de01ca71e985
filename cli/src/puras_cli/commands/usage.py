"""``puras usage`` (spend over time) and ``puras balance``, with the project's own key."""

from __future__ import annotations

import click

from puras_cli import api
from puras_cli.commands.output import Column, output_option, print_json, print_object, print_table
from puras_cli.context import CliContext
from puras_client import calls

__all__ = ["balance", "usage"]

USAGE_COLUMNS = (
    Column("KEY", "key"),
    Column("BILLED (µ$)", "billed_micros"),
    Column("CALLS", "calls"),
    Column("INPUT TOKENS", "input_tokens"),
    Column("OUTPUT TOKENS", "output_tokens"),
)


@click.command()
@click.option(
    "--from",
    "start",
    metavar="WHEN",
    help="First instant counted: an ISO date (its UTC midnight) or datetime. "
    "Default: 30 days before --to.",
)
@click.option(
    "--to",
    "end",
    metavar="WHEN",
    help="First instant not counted (an ISO date or datetime). Default: now.",
)
@click.option(
    "--group-by",
    type=click.Choice(api.USAGE_GROUP_BY),
    default=None,
    help="Sum per UTC day (the default), per skill or per model slug.",
)
@output_option
@click.pass_obj
def usage(
    obj: CliContext, start: str | None, end: str | None, group_by: str | None, output: str
) -> None:
    """Billed calls, micros and tokens summed per day, skill or model."""
    with obj.api_client() as client:
        out = api.usage(client, start=start, end=end, group_by=group_by)
    if output == "json":
        print_json(out)
    else:
        print_table(out.get("usage") or [], USAGE_COLUMNS, empty="no billed calls in the range")


@click.command()
@output_option
@click.pass_obj
def balance(obj: CliContext, output: str) -> None:
    """The project's credit balance (1 USD = 1,000,000 micros)."""
    with obj.api_client() as client:
        out = client.call(calls.balance())
    if output == "json":
        print_json(out)
        return
    micros = int(out["credit_balance_micros"])
    print_object({"credit_balance_micros": micros, "usd": f"{micros / 1_000_000:.6f}"})
