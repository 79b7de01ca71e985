"""``puras usage`` (Z2): the project's spend over time, with the project's own key."""

from __future__ import annotations

import click

from puras_cli import api
from puras_cli.context import CliContext, emit

__all__ = ["usage"]


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
@click.pass_obj
def usage(obj: CliContext, start: str | None, end: str | None, group_by: str | None) -> None:
    """Billed calls, micros and tokens summed per day, skill or model."""
    with obj.api_client() as client:
        emit(api.usage(client, start=start, end=end, group_by=group_by))
