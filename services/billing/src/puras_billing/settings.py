"""Billing settings (env prefix ``PURAS_BILLING_``, falling back to ``PURAS_``)."""

from __future__ import annotations

from typing import ClassVar

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
