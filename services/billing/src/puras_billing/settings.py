"""Billing settings (env prefix ``PURAS_BILLING_``, falling back to ``PURAS_``)."""

from __future__ import annotations

from typing import ClassVar

from puras_common.settings import ServiceSettings

__all__ = ["BillingSettings"]


class BillingSettings(ServiceSettings):
    service: ClassVar[str] = "billing"
