"""The pricing registry's data: what each ``registries/<version>.json`` holds, as structs.

Every rate is an integer number of micros (1 USD = 1,000,000 micros) exactly as
published, which includes the default margin (SPEC B2); :mod:`.registry` scales it to
the margin in effect. No float is stored or computed with.
"""

from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "Condition",
    "ConditionalRate",
    "MediaKind",
    "MediaPrice",
    "MediaShape",
    "ModelPrice",
    "RegistryData",
]

MediaKind = Literal["image", "video", "audio"]
MediaShape = Literal["per_call", "per_second", "per_megapixel"]


class ModelPrice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The token rates of one agent model slug, in micros per 1,000,000 tokens."""

    slug: str
    """``family/variant``, as in :mod:`puras_common.model_catalog`."""
    family: str
    """The slug's first segment (``claude``, ``gpt``, ``gemini``)."""
    input: int
    """Prompt tokens not read from the cache, as published."""
    output: int
    """Generated tokens, as published."""
    cache_read: int
    """Prompt tokens read from the cache: the provider's convention on the input rate
    (Anthropic 0.1x, OpenAI 0.5x, Gemini 0.25x)."""
    cache_write: int
    """Prompt tokens written to the cache: Anthropic 1.25x input; 0 where the provider
    charges nothing to write (OpenAI, Gemini)."""


class Condition(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One input a conditional media rate table is indexed by."""

    name: str
    """The key of this condition in a row's ``when``."""
    inputs: list[str]
    """The media inputs read for it, first present wins (``size`` then ``image_size``)."""
    kind: Literal["flag", "choice"]
    """``flag``: the input's truthiness (``true``/``false``; a non-empty list is true);
    ``choice``: its value as text (a ``{width, height}`` object reads as ``WxH``)."""
    default: str
    """The value when no input is given or its value has no row: the default row's."""
    aliases: dict[str, str] = {}
    """Other spellings of a value (``square_hd`` -> ``1024x1024``)."""


class ConditionalRate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One row of an input-conditional rate table."""

    when: dict[str, str]
    """The value of every condition this row applies to."""
    label: str
    """The row as the price table publishes it (``high · 1024x1024``, ``audio on``)."""
    rate: int
    """Micros per unit of the slug's shape."""


class MediaPrice(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How one media slug is priced."""

    slug: str
    """``vendor/model``, as passed to ``media.run``."""
    kind: MediaKind
    """What it generates."""
    shape: MediaShape
    """Per output, per second of output, or per megapixel of output."""
    rate: int
    """Micros per unit: the only rate of a flat slug, the default row of a conditional one."""
    count_input: str | None = None
    """The input naming how many outputs a call makes (``num_images``; absent: 1)."""
    conditions: list[Condition] = []
    """What a conditional slug's rate depends on (empty: one flat rate)."""
    rates: list[ConditionalRate] = []
    """The conditional rate table, as published."""
    default_width: int | None = None
    """``per_megapixel``: the output width when the inputs name none."""
    default_height: int | None = None
    """``per_megapixel``: the output height when the inputs name none."""


class RegistryData(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The whole registry file."""

    version: str
    """Which registry a price was computed with; every usage row names it."""
    margin_pct_included: int
    """The margin the published rates include (SPEC B2: the default, 20)."""
    about: str
    """How to read the file (JSON has no comments)."""
    models: list[ModelPrice]
    """Every agent model slug."""
    media: list[MediaPrice]
    """Every media slug."""
