"""Ledger entries and usage rows as pure functions of ledger events: the rows of
billing's ledger projection, and what the audit expects them to be (one function each,
so the two cannot drift apart)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from puras_common.events.base import Envelope, Event
from puras_common.events.types import BilledCall, CreditCharged, CreditGranted

__all__ = ["USAGE_ROW_COLUMNS", "LedgerEntry", "entry_for", "usage_row"]

USAGE_ROW_COLUMNS = (
    "usage_id, project_id, job_id, skill, key_prefix, step, provider, model, input_tokens, "
    "output_tokens, cache_read_tokens, cache_write_tokens, billed_micros, registry_version, "
    "margin_pct, at, seq"
)
"""The ``usage_rows`` columns, in :func:`usage_row`'s order."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    entry_id: str
    project_id: str
    kind: str
    """``grant`` (a top-up, positive) or ``charge`` (a billed call, negative)."""
    micros: int
    """Signed change of the balance."""
    note: str
    at: datetime


def entry_for(env: Envelope, ev: Event | None) -> LedgerEntry | None:
    if isinstance(ev, CreditGranted):
        return LedgerEntry(
            entry_id=env.id,
            project_id=env.project_id,
            kind="grant",
            micros=ev.micros,
            note=ev.note,
            at=env.at,
        )
    if isinstance(ev, CreditCharged):
        c = ev.call
        return LedgerEntry(
            entry_id=env.id,
            project_id=env.project_id,
            kind="charge",
            micros=-c.billed_micros,
            note=(
                f"job {c.job_id} media call {c.step}: {c.provider} {c.model}"
                if c.kind == "media"
                else f"job {c.job_id} step {c.step}: {c.provider} {c.model}"
            ),
            at=env.at,
        )
    return None


def usage_row(project_id: str, at: datetime, seq: int, c: BilledCall) -> tuple[Any, ...]:
    """A charge's ``usage_rows`` row, in :data:`USAGE_ROW_COLUMNS` order."""
    return (
        c.usage_id,
        project_id,
        c.job_id,
        c.skill,
        c.key_prefix,
        c.step,
        c.provider,
        c.model,
        c.input_tokens,
        c.output_tokens,
        c.cache_read_tokens,
        c.cache_write_tokens,
        c.billed_micros,
        c.registry_version,
        c.margin_pct,
        at,
        seq,
    )
