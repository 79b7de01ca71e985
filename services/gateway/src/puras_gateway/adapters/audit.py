"""The billing audit run by the gateway (``POST /v1/admin/audit``).

Why here and not in billing: the audit only reads, and the gateway already holds every
right it needs — an ordered consumer on the whole event log, SELECT on billing's ledger
tables (granted for the balance it shows), its own ``jobs`` view, and CREATE on the
database for the audit's scratch schema (its projections create schemas too). Run in
billing, it would need a read grant on the gateway's tables and a request subject
between the two; here it needs nothing new on NATS or in Postgres. And the ledger's
one writer does not audit itself.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from puras_common.audit import run_audit
from puras_common.bus import Bus

__all__ = ["LogAuditor"]


class LogAuditor:
    def __init__(self, bus: Bus, dsn: str) -> None:
        self._bus = bus
        self._dsn = dsn

    async def audit(self, settle_s: float) -> dict[str, Any]:
        # A connection of its own, not the pool's: the audit listens for projection
        # commits on it and holds a snapshot while it compares.
        conn = await asyncpg.connect(self._dsn)
        try:
            report = await run_audit(self._bus.js, conn, settle_s=settle_s)
        finally:
            await conn.close()
        return report.as_dict()
