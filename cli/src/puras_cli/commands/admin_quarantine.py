"""``puras admin quarantine ...``: events a projection could not decode or apply.

* ``list [--all] [--projection NAME]``: unresolved entries (``--all``: resolved too).
* ``show <projection> <seq>``: one entry with its reason and the start of its bytes.
* ``retry <projection> <seq>``: apply it again through this build's code (after an
  upgrade fixed what refused it); on success it leaves the quarantine. Exit 1 when it
  still fails (the entry stays, with the new reason).
* ``resolve <projection> <seq> --note TEXT``: accept it as skipped; it stays on record
  and no longer makes ``/readyz`` degraded.

Like ``admin rebuild``, these talk to Postgres (and, for ``retry``, NATS) directly
(``PURAS_DATABASE_URL``, ``PURAS_NATS_URL``), not to the HTTP API: the quarantine sits
next to the projections it belongs to, retry needs the projection code and the log,
and billing's ledger projection has no HTTP API. They work with the gateway down.
"""

from __future__ import annotations

import asyncio
from typing import Any

import click

from puras_cli import extras
from puras_cli.client import PurasError
from puras_cli.commands.admin_rebuild import _need, all_projections
from puras_cli.context import CliContext, emit

__all__ = ["COMMANDS", "quarantine"]


async def _with_conn(dsn: str, fn: Any) -> Any:
    import asyncpg

    from puras_common.db import init_connection

    conn = await asyncpg.connect(dsn)
    try:
        await init_connection(conn)
        return await fn(conn)
    finally:
        await conn.close()


@click.group()
def quarantine() -> None:
    """Events a projection could not decode or apply (they make /readyz degraded)."""
    extras.require(
        extras.ADMIN, f"admin quarantine {click.get_current_context().invoked_subcommand}"
    )


@quarantine.command("list")
@click.option("--all", "all_", is_flag=True, help="Resolved entries too.")
@click.option("--projection", default=None, help="Only this projection's entries.")
@click.pass_obj
def list_(obj: CliContext, all_: bool, projection: str | None) -> None:
    """List quarantined events (unresolved ones unless --all)."""
    from puras_common.projection.quarantine import list_entries

    dsn = _need(obj.config.database_url, "PURAS_DATABASE_URL")
    entries = asyncio.run(
        _with_conn(dsn, lambda c: list_entries(c, include_resolved=all_, projection=projection))
    )
    emit({"quarantined": [e.summary() for e in entries], "count": len(entries)})


def _missing(projection: str, seq: int) -> PurasError:
    return PurasError(f"no quarantined event {seq} of projection {projection!r}")


@quarantine.command("show")
@click.argument("projection")
@click.argument("seq", type=click.IntRange(min=1))
@click.pass_obj
def show(obj: CliContext, projection: str, seq: int) -> None:
    """Show the quarantined event SEQ of PROJECTION."""
    from puras_common.projection.quarantine import get_entry

    dsn = _need(obj.config.database_url, "PURAS_DATABASE_URL")
    entry = asyncio.run(_with_conn(dsn, lambda c: get_entry(c, projection, seq)))
    if entry is None:
        raise _missing(projection, seq)
    emit(entry.detail())


@quarantine.command("resolve")
@click.argument("projection")
@click.argument("seq", type=click.IntRange(min=1))
@click.option("--note", required=True, help="Why the event is accepted as skipped.")
@click.pass_obj
def resolve(obj: CliContext, projection: str, seq: int, note: str) -> None:
    """Accept the quarantined event SEQ of PROJECTION as skipped."""
    from puras_common.projection.quarantine import resolve_entry

    if not note.strip():
        raise click.BadParameter("say why", param_hint="--note")
    dsn = _need(obj.config.database_url, "PURAS_DATABASE_URL")
    entry = asyncio.run(_with_conn(dsn, lambda c: resolve_entry(c, projection, seq, note)))
    if entry is None:
        raise _missing(projection, seq)
    emit({"projection": projection, "seq": seq, "resolved": True, "resolution": note})


async def _retry(nats_url: str, dsn: str, projection: str, seq: int) -> dict[str, Any]:
    from puras_common.bus import connect
    from puras_common.projection.runner import retry_quarantined

    bus = await connect(nats_url, name="puras-admin-quarantine")
    try:
        out = await retry_quarantined(dsn, bus.js, all_projections()[projection](), seq)
    except LookupError as exc:
        raise PurasError(str(exc)) from exc
    finally:
        await bus.close()
    result: dict[str, Any] = {"projection": projection, "seq": seq, "applied": out.applied}
    if out.applied:
        result["reapplied_after"] = out.reapplied_after
    else:
        result["reason"] = out.reason
    return result


@quarantine.command("retry")
@click.argument("projection")
@click.argument("seq", type=click.IntRange(min=1))
@click.pass_obj
def retry(obj: CliContext, projection: str, seq: int) -> None:
    """Apply the quarantined event SEQ of PROJECTION again through the current code."""
    known = all_projections()
    if projection not in known:
        raise PurasError(f"unknown projection {projection!r}; known: {', '.join(sorted(known))}")
    nats_url = _need(obj.config.nats_url, "PURAS_NATS_URL")
    dsn = _need(obj.config.database_url, "PURAS_DATABASE_URL")
    out = asyncio.run(_retry(nats_url, dsn, projection, seq))
    emit(out)
    if not out["applied"]:
        raise SystemExit(1)


COMMANDS: tuple[click.Command, ...] = (quarantine,)
"""Commands of this module that ``puras admin`` registers."""
