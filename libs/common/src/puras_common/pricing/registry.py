"""The pricing function (SPEC B1, B2): pure, integers only.

Published rates include the default margin (B2), so a price at margin ``m`` is
``published x (100 + m) / (100 + included)``, computed on exact integers (a duration
may be a fraction of a second: :class:`~fractions.Fraction`, never a float) and rounded
up to the whole micro once, at the end of a call's price.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any

from puras_common.events.types import ModelUsage
from puras_common.pricing.errors import PricingError, UnknownSlug
from puras_common.pricing.inputs import read_condition, read_count, read_pixels, read_seconds
from puras_common.pricing.types import ConditionalRate, MediaPrice, ModelPrice, RegistryData

__all__ = ["DEFAULT_MARGIN_PCT", "Registry", "usd"]

DEFAULT_MARGIN_PCT = 20
"""``PURAS_MARGIN_PCT`` when unset (B1)."""

_TOKENS_PER_RATE = 1_000_000
"""Model rates are per 1M tokens."""
_PIXELS_PER_RATE = 1_000_000
"""Megapixel rates are per 10^6 pixels."""


def usd(micros: int) -> str:
    """``micros`` as an exact decimal USD string (``3600000`` -> ``"3.60"``)."""
    d = Decimal(micros).scaleb(-6).normalize()
    text = format(d, "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def _check_margin(margin_pct: int) -> None:
    if isinstance(margin_pct, bool) or not isinstance(margin_pct, int) or margin_pct < 0:
        raise PricingError(f"margin_pct must be a non-negative integer, not {margin_pct!r}")


class Registry:
    """One version of the price tables and the prices they give."""

    def __init__(self, data: RegistryData) -> None:
        self.data = data
        self.version = data.version
        """Which registry priced a usage; every usage row records it."""
        self._models = MappingProxyType({m.slug: m for m in data.models})
        self._media = MappingProxyType({m.slug: m for m in data.media})
        _check_data(data)
        for m in data.media:
            _check_media(m)

    # -- lookup ---------------------------------------------------------------------------

    def model(self, slug: str) -> ModelPrice:
        """The rates of a model slug; :class:`UnknownSlug` if it has none."""
        try:
            return self._models[slug]
        except KeyError:
            raise UnknownSlug("model", slug, list(self._models)) from None

    def media(self, slug: str) -> MediaPrice:
        """The pricing of a media slug; :class:`UnknownSlug` if it has none."""
        try:
            return self._media[slug]
        except KeyError:
            raise UnknownSlug("media", slug, list(self._media)) from None

    def model_slugs(self) -> list[str]:
        return list(self._models)

    def media_slugs(self) -> list[str]:
        return list(self._media)

    # -- prices ---------------------------------------------------------------------------

    def _at_margin(self, published: Fraction | int, margin_pct: int) -> int:
        """``published`` micros at ``margin_pct``, rounded up to the whole micro."""
        _check_margin(margin_pct)
        base = 100 + self.data.margin_pct_included
        return math.ceil(Fraction(published) * (100 + margin_pct) / base)

    def model_cost(
        self, slug: str, usage: ModelUsage, *, margin_pct: int = DEFAULT_MARGIN_PCT
    ) -> int:
        """Micros billed for one model call's tokens."""
        p = self.model(slug)
        parts = (
            ("input_tokens", usage.input_tokens, p.input),
            ("output_tokens", usage.output_tokens, p.output),
            ("cache_read_tokens", usage.cache_read_tokens, p.cache_read),
            ("cache_write_tokens", usage.cache_write_tokens, p.cache_write),
        )
        total = 0
        for name, tokens, rate in parts:
            if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
                raise PricingError(f"{slug}: {name} must be a non-negative integer, not {tokens!r}")
            total += tokens * rate
        # ceil(total / 1M x (100 + m) / (100 + included)) on integers: the same number
        # as _at_margin's Fraction, without building one (the audit prices every charge
        # of the log again, so this is its hot path).
        _check_margin(margin_pct)
        base = 100 + self.data.margin_pct_included
        return -(-(total * (100 + margin_pct)) // (_TOKENS_PER_RATE * base))

    def media_rate(self, slug: str, inputs: dict[str, Any]) -> tuple[int, ConditionalRate | None]:
        """The published rate a call with ``inputs`` is priced at, and the table row it
        came from (``None`` for a flat slug)."""
        p = self.media(slug)
        if not p.rates:
            return p.rate, None
        picked: dict[str, str] = {}
        for cond in p.conditions:
            value = read_condition(cond, inputs)
            listed = {r.when.get(cond.name) for r in p.rates}
            picked[cond.name] = value if value in listed else cond.default
        for row in p.rates:
            if row.when == picked:
                return row.rate, row
        # A combination the table does not list (voice control without audio): the
        # slug's default row, as the published index prices it.
        return p.rate, _default_row(p)

    def media_cost(
        self,
        slug: str,
        inputs: dict[str, Any],
        *,
        outputs: dict[str, Any] | None = None,
        margin_pct: int = DEFAULT_MARGIN_PCT,
    ) -> int:
        """Micros billed for one successful media call with ``inputs``; ``outputs`` is
        what the upstream reported (``inference_time`` in seconds, ``num_outputs``)."""
        p = self.media(slug)
        if not isinstance(inputs, dict):
            raise PricingError(f"{slug}: inputs must be an object, not {type(inputs).__name__}")
        out = outputs or {}
        rate, _row = self.media_rate(slug, inputs)
        count = read_count(slug, p.count_input, inputs, out)
        published: Fraction
        if p.shape == "per_call":
            published = Fraction(rate * count)
        elif p.shape == "per_second":
            published = rate * count * read_seconds(slug, inputs, out)
        else:
            default = (
                (p.default_width, p.default_height)
                if p.default_width is not None and p.default_height is not None
                else None
            )
            w, h = read_pixels(slug, inputs, default)
            published = Fraction(rate * count * w * h, _PIXELS_PER_RATE)
        return self._at_margin(published, margin_pct)

    # -- listing --------------------------------------------------------------------------

    def listing(self, *, margin_pct: int = DEFAULT_MARGIN_PCT) -> dict[str, Any]:
        """Every slug with its shape and rates at ``margin_pct`` (``GET /v1/pricing``)."""
        _check_margin(margin_pct)

        def amount(published: int) -> dict[str, Any]:
            micros = self._at_margin(published, margin_pct)
            return {"micros": micros, "usd": usd(micros)}

        models = [
            {
                "slug": m.slug,
                "family": m.family,
                "kind": "model",
                "shape": "per_token",
                "unit": "1M tokens",
                "rates": {
                    "input": amount(m.input),
                    "output": amount(m.output),
                    "cache_read": amount(m.cache_read),
                    "cache_write": amount(m.cache_write),
                },
            }
            for m in self.data.models
        ]
        media = []
        for p in self.data.media:
            default = _default_row(p)
            media.append(
                {
                    "slug": p.slug,
                    "kind": p.kind,
                    "shape": p.shape,
                    "unit": _UNITS[p.shape],
                    "count_input": p.count_input,
                    "conditional": bool(p.rates),
                    "rate": amount(p.rate),
                    "conditions": [
                        {
                            "name": c.name,
                            "inputs": c.inputs,
                            "kind": c.kind,
                            "default": c.default,
                            "aliases": c.aliases,
                        }
                        for c in p.conditions
                    ],
                    "rates": [
                        {
                            "when": r.when,
                            "label": r.label,
                            **amount(r.rate),
                            "default": r is default,
                        }
                        for r in p.rates
                    ],
                }
            )
        return {"version": self.version, "margin_pct": margin_pct, "models": models, "media": media}


_UNITS = {"per_call": "output", "per_second": "second", "per_megapixel": "megapixel"}


def _default_row(p: MediaPrice) -> ConditionalRate | None:
    defaults = {c.name: c.default for c in p.conditions}
    return next((r for r in p.rates if r.when == defaults), None)


def _check_data(data: RegistryData) -> None:
    """Each slug once, no negative rate: a price list that says two things is refused."""
    for kind, slugs in (
        ("model", [m.slug for m in data.models]),
        ("media", [m.slug for m in data.media]),
    ):
        twice = sorted({s for s in slugs if slugs.count(s) > 1})
        if twice:
            raise PricingError(f"registry: {kind} slugs listed twice: {', '.join(twice)}")
    for m in data.models:
        if min(m.input, m.output, m.cache_read, m.cache_write) < 0:
            raise PricingError(f"registry: {m.slug} has a negative rate")
    for p in data.media:
        if min([p.rate, *(r.rate for r in p.rates)]) < 0:
            raise PricingError(f"registry: {p.slug} has a negative rate")
    if data.margin_pct_included < 0:
        raise PricingError("registry: margin_pct_included must not be negative")


def _check_media(p: MediaPrice) -> None:
    """A registry file that cannot price a slug consistently is refused at load."""
    if p.rates:
        row = _default_row(p)
        if row is None or row.rate != p.rate:
            raise PricingError(
                f"registry: {p.slug}'s rate must equal its default row (the conditions' defaults)"
            )
    if p.shape == "per_megapixel" and (p.default_width is None) != (p.default_height is None):
        raise PricingError(f"registry: {p.slug} needs both default_width and default_height")
