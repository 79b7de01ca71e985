"""Billing settings (env prefix ``PURAS_BILLING_``, falling back to ``PURAS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from puras_common.settings import DatabaseSettings

__all__ = ["BillingSettings"]


class BillingSettings(DatabaseSettings):
    service: ClassVar[str] = "billing"

    batch: int = 64
    """Commands in flight at once (pulled and handled together)."""
    cmd_ack_wait_s: float = 30.0
    """A command not acked this long (billing died handling it) is redelivered."""
    cmd_max_deliver: int = 20
    """Deliveries of a command before JetStream gives up on it."""
    margin_pct: int = Field(default=20, ge=0)
    """Margin on upstream cost in percent (``PURAS_MARGIN_PCT``, SPEC B1) that usage is
    charged at; billing's price is the authoritative one."""
    usage_batch: int = Field(default=256, ge=1)
    """Usage events charged at once (the other job events cost no charge slot)."""
    usage_checkpoint_s: float = Field(default=1.0, gt=0)
    """How often, at most, billing stores where its charging of the job subjects has
    got to; a billing killed reads again what it read since (charging is safe to
    repeat)."""
    usage_retry_max_s: float = Field(default=300.0, gt=0)
    """Longest delay before a usage event that could not be priced (a slug this build's
    registry does not know) is tried again; the delay doubles from 1 s up to this."""
