"""Billing settings (env prefix ``PURAS_BILLING_``, falling back to ``PURAS_``)."""

from __future__ import annotations

from typing import ClassVar

from puras_common.settings import DatabaseSettings

__all__ = ["BillingSettings"]


class BillingSettings(DatabaseSettings):
    service: ClassVar[str] = "billing"
