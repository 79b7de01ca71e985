"""The billing audit (SPEC Z3): the event log replayed from sequence 1, every usage
priced again with the registry version its charge names, and the ledger's balances,
charges, usage rows and job costs (billing's and the gateway's) diffed against the live
tables. :func:`run_audit` is the whole of it; :mod:`.fold` is its pure core."""

from __future__ import annotations

from puras_common.audit.fold import AuditFold, Difference, ExpectedTables
from puras_common.audit.service import AuditIncomplete, AuditReport, run_audit

__all__ = [
    "AuditFold",
    "AuditIncomplete",
    "AuditReport",
    "Difference",
    "ExpectedTables",
    "run_audit",
]
