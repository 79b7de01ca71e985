"""The public price list (``GET /v1/pricing``, SPEC B2, T1: no key needed)."""

from __future__ import annotations

from typing import Any

from puras_common.pricing import Registry

__all__ = ["PricingService"]


class PricingService:
    """Every slug's rates at the margin this gateway is configured with."""

    def __init__(self, registry: Registry, margin_pct: int) -> None:
        # The registry ships with the code and the margin is configuration: the listing
        # cannot change while the process runs, so it is computed once.
        self._listing = registry.listing(margin_pct=margin_pct)

    def listing(self) -> dict[str, Any]:
        """``{version, margin_pct, models: [...], media: [...]}``."""
        return self._listing
