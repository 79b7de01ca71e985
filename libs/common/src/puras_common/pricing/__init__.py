"""The pricing registry (SPEC B2) as versioned data, and the pure pricing function.

``registries/<version>.json`` holds, one file per registry version, every model and
media slug's published rates in integer micros (they include the default 20 % margin);
:class:`Registry` prices a model call's tokens or a media call's inputs at any
``PURAS_MARGIN_PCT``, rounding up to the whole micro. The runner and billing both price
with it (the current version, :data:`CURRENT`); billing's price is authoritative, and
the audit prices every charge again with the version it names.
"""

from __future__ import annotations

from puras_common.pricing.errors import PricingError, UnknownRegistryVersion, UnknownSlug
from puras_common.pricing.loader import CURRENT, known_versions, load_registry, parse_registry
from puras_common.pricing.registry import DEFAULT_MARGIN_PCT, Registry, usd
from puras_common.pricing.types import (
    Condition,
    ConditionalRate,
    MediaPrice,
    ModelPrice,
    RegistryData,
)

__all__ = [
    "CURRENT",
    "DEFAULT_MARGIN_PCT",
    "Condition",
    "ConditionalRate",
    "MediaPrice",
    "ModelPrice",
    "PricingError",
    "Registry",
    "RegistryData",
    "UnknownRegistryVersion",
    "UnknownSlug",
    "known_versions",
    "load_registry",
    "parse_registry",
    "usd",
]
