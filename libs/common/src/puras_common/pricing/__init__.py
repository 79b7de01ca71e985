"""The pricing registry (SPEC B2) as versioned data, and the pure pricing function.

``registry.json`` holds every model and media slug's published rates in integer micros
(they include the default 20 % margin); :class:`Registry` prices a model call's tokens
or a media call's inputs at any ``PURAS_MARGIN_PCT``, rounding up to the whole micro.
The runner and billing both price with it; billing's price is authoritative.
"""

from __future__ import annotations

from puras_common.pricing.errors import PricingError, UnknownSlug
from puras_common.pricing.loader import load_registry, parse_registry
from puras_common.pricing.registry import DEFAULT_MARGIN_PCT, Registry, usd
from puras_common.pricing.types import (
    Condition,
    ConditionalRate,
    MediaPrice,
    ModelPrice,
    RegistryData,
)

__all__ = [
    "DEFAULT_MARGIN_PCT",
    "Condition",
    "ConditionalRate",
    "MediaPrice",
    "ModelPrice",
    "PricingError",
    "Registry",
    "RegistryData",
    "UnknownSlug",
    "load_registry",
    "parse_registry",
    "usd",
]
