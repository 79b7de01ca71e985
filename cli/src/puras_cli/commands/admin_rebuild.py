"""Operator commands that work on the event log itself.

* ``puras admin rebuild <projection>|all``: replay the log from sequence 1 into a scratch
  schema and prove the result equals the live tables (ARCHITECTURE §3). Exit 0 when equal,
  1 when not (with the differing rows). This is also the cost audit: the ledger rebuilt
  from the log must equal the ledger billing keeps.
* ``puras admin streams [--apply]``: check the JetStream streams against their
  declarations; ``--apply`` changes a stream on purpose after you read the diff.

Both talk to NATS and Postgres directly (``PURAS_NATS_URL``, ``PURAS_DATABASE_URL``, from
the environment or ``.puras/dev.env``), not to the HTTP API.

:data:`COMMANDS` lists this module's commands; ``puras admin`` registers every one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from puras_cli import extras
from puras_cli.client import PurasError
from puras_cli.context import CliContext

if TYPE_CHECKING:
    # The services' code is the admin extra's; the base CLI must import without it.
    from puras_common.projection.base import Projection

__all__ = ["COMMANDS", "all_projections"]


def all_projections() -> dict[str, type[Projection]]:
    """Every projection of every service, by name."""
    from puras_billing.bootstrap import BILLING_PROJECTIONS
    from puras_drive.adapters.projection import DriveFilesProjection
    from puras_gateway.adapters.projections import GATEWAY_PROJECTIONS

    found: list[type[Projection]] = [
        *GATEWAY_PROJECTIONS,
        *BILLING_PROJECTIONS,
        DriveFilesProjection,
    ]
    return {p.name: p for p in found}


def _need(value: str | None, name: str) -> str:
    if not value:
        raise PurasError(
            f"{name} is not set: export it, or run this in a checkout where `./dev up` "
            "is running (its .puras/dev.env has it)"
        )
    return value


async def _rebuild(nats_url: str, dsn: str, names: list[str], keep: bool) -> bool:
    from puras_common.bus import connect
    from puras_common.projection.rebuild import rebuild_and_compare

    projections = all_projections()
    bus = await connect(nats_url, name="puras-admin-rebuild")
    try:
        ok = True
        for name in names:
            report = await rebuild_and_compare(dsn, bus.js, projections[name](), keep=keep)
            click.echo(report.render())
            ok = ok and report.equal
        return ok
    finally:
        await bus.close()


@click.command("rebuild")
@click.argument("projection")
@click.option("--keep", is_flag=True, help="Keep the rebuilt tables in schema rebuild_<name>.")
@click.pass_obj
def rebuild(obj: CliContext, projection: str, keep: bool) -> None:
    """Rebuild PROJECTION (or `all`) from the event log and compare it with the live tables."""
    extras.require(extras.ADMIN, "admin rebuild")
    known = all_projections()
    names = sorted(known) if projection == "all" else [projection]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PurasError(
            f"unknown projection {unknown[0]!r}; known: {', '.join(sorted(known))} (or all)"
        )
    nats_url = _need(obj.config.nats_url, "PURAS_NATS_URL")
    dsn = _need(obj.config.database_url, "PURAS_DATABASE_URL")
    if not asyncio.run(_rebuild(nats_url, dsn, names, keep)):
        raise SystemExit(1)


async def _streams(nats_url: str, replicas: int, apply: bool) -> list[str]:
    from puras_common.bus import connect, ensure_streams

    bus = await connect(nats_url, name="puras-admin-streams")
    try:
        return await ensure_streams(bus.js, replicas=replicas, apply_changes=apply)
    finally:
        await bus.close()


@click.command("streams")
@click.option("--apply", "apply_", is_flag=True, help="Change streams to match the declarations.")
@click.option(
    "--replicas",
    type=click.IntRange(min=1, max=5),
    default=None,
    help="Stream replicas (default: PURAS_STREAM_REPLICAS or 1).",
)
@click.pass_obj
def streams(obj: CliContext, apply_: bool, replicas: int | None) -> None:
    """Check the JetStream streams against their declarations (create missing ones)."""
    import os

    extras.require(extras.ADMIN, "admin streams")
    from puras_common.bus import StreamConfigMismatch

    nats_url = _need(obj.config.nats_url, "PURAS_NATS_URL")
    n = replicas or int((obj.environ or os.environ).get("PURAS_STREAM_REPLICAS", "1"))
    try:
        changed = asyncio.run(_streams(nats_url, n, apply_))
    except StreamConfigMismatch as exc:
        raise PurasError(str(exc)) from exc
    click.echo("\n".join(changed) if changed else "streams match their declarations")


COMMANDS: tuple[click.Command, ...] = (rebuild, streams)
"""Commands of this module that ``puras admin`` registers."""
