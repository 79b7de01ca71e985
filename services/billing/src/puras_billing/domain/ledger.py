"""Ledger entries as a pure function of ledger events.

The function lives in ``puras_common.ledger``: the audit (``puras admin audit``, run by
the CLI and the gateway, which do not depend on billing) derives the entries it expects
with the very function billing's projection writes them with.
"""

from __future__ import annotations

from puras_common.ledger import LedgerEntry, entry_for

__all__ = ["LedgerEntry", "entry_for"]
