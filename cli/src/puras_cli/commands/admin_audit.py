"""``puras admin audit``: prove every balance and every job cost in Postgres equals what
the event log says, to the micro (SPEC Z3).

Replays the log from sequence 1, prices every usage event again with the registry
version and margin its charge names, and diffs billing's ledger tables and the gateway's
job costs against it (``puras_common.audit``). Talks to NATS and Postgres directly
(``PURAS_NATS_URL``, ``PURAS_DATABASE_URL``), as ``puras admin rebuild`` does; the
database role needs SELECT on the ledger tables and ``jobs``.

Exit status: 0 clean, 1 when there is any difference (each one printed), 2 when the audit
could not compare (the live projections did not reach the log in time).
"""

from __future__ import annotations

import asyncio

import click

from puras_cli import extras
from puras_cli.commands.admin_rebuild import _need
from puras_cli.context import CliContext

__all__ = ["COMMANDS"]

EXIT_DIFFERENT = 1
EXIT_INCOMPLETE = 2


async def _audit(nats_url: str, dsn: str, settle_s: float, as_json: bool) -> int:
    import asyncpg
    import msgspec

    from puras_common.audit import AuditIncomplete, run_audit
    from puras_common.bus import connect

    bus = await connect(nats_url, name="puras-admin-audit")
    try:
        conn = await asyncpg.connect(dsn)
        try:
            report = await run_audit(bus.js, conn, settle_s=settle_s)
        finally:
            await conn.close()
    except AuditIncomplete as exc:
        click.echo(f"audit incomplete: {exc}", err=True)
        return EXIT_INCOMPLETE
    finally:
        await bus.close()
    click.echo(msgspec.json.encode(report.as_dict()).decode() if as_json else report.render())
    return 0 if report.clean else EXIT_DIFFERENT


@click.command("audit")
@click.option(
    "--settle",
    "settle_s",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds to wait for billing and the projections to catch up with the log.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def audit(obj: CliContext, settle_s: float, as_json: bool) -> None:
    """Replay the event log and diff balances, charges, usage rows and job costs."""
    extras.require(extras.ADMIN, "admin audit")
    nats_url = _need(obj.config.nats_url, "PURAS_NATS_URL")
    dsn = _need(obj.config.database_url, "PURAS_DATABASE_URL")
    code = asyncio.run(_audit(nats_url, dsn, settle_s, as_json))
    if code:
        raise SystemExit(code)


COMMANDS: tuple[click.Command, ...] = (audit,)
"""Commands of this module that ``puras admin`` registers."""
