"""``puras dev up|demo``: the whole system on this machine (``./dev up``, ``./dev demo``)."""

from __future__ import annotations

import click

from puras_cli import extras

__all__ = ["dev"]


@click.group()
def dev() -> None:
    """Run Puras locally: nats-server, Postgres and the five services."""
    extras.require(extras.DEVSTACK, f"dev {click.get_current_context().invoked_subcommand}")


@dev.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Gateway port (default: the previous run's if free, else any free one).",
)
@click.option(
    "--runners", type=click.IntRange(1, 32), default=1, show_default=True, help="Runner processes."
)
def up(port: int | None, runners: int) -> None:
    """Run the stack in the foreground, data kept in .puras/stack (Ctrl-C stops it)."""
    # Imported here: the stack machinery is the devstack extra's, which `puras --help`
    # and the API commands do without.
    from puras_cli.devstack.repo import find_repo_root
    from puras_cli.devstack.up import run_up

    raise SystemExit(run_up(find_repo_root(), port=port, runners=runners))


@dev.command()
def demo() -> None:
    """Start a throwaway stack, push examples/, run jobs, print results, stop it all."""
    from puras_cli.devstack.demo import run_demo
    from puras_cli.devstack.repo import find_repo_root

    raise SystemExit(run_demo(find_repo_root()))
