"""The catalog of agent models a skill may name in ``skill.yaml`` (SPEC A9).

A slug is ``family/variant``. This module is pure data: which slugs exist, their family
and what they can take as input. Which upstream serves a slug (provider, upstream model
id, base URL) is runner configuration, deliberately not here (A9: "configuration, not
code"); prices live in the pricing registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelFamily",
    "ModelInfo",
    "UnknownModel",
    "is_known_model",
    "known_models",
    "model_info",
    "unknown_model_message",
]

ModelFamily = Literal["claude", "gpt", "gemini"]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One slug of the catalog and what it can take as input."""

    slug: str
    """``family/variant``, e.g. ``claude/sonnet-4-6``."""
    family: ModelFamily
    """The first segment of the slug."""
    label: str
    """Human name for dashboards, e.g. ``Sonnet 4.6``."""
    vision: bool
    """Accepts image blocks (attachments, ``file_read`` of an image)."""
    pdf: bool
    """Accepts PDF document blocks (A6: the Claude family only)."""


def _m(slug: str, label: str) -> ModelInfo:
    family = slug.split("/", 1)[0]
    if family == "claude":
        return ModelInfo(slug=slug, family="claude", label=label, vision=True, pdf=True)
    if family == "gpt":
        return ModelInfo(slug=slug, family="gpt", label=label, vision=True, pdf=False)
    if family == "gemini":
        return ModelInfo(slug=slug, family="gemini", label=label, vision=True, pdf=False)
    raise ValueError(f"unknown model family in {slug!r}")


# Catalog order is the raw docs' table order (best first within a family): error
# messages and dashboards list slugs in this order.
_CATALOG: Final = (
    _m("claude/opus-4-7", "Opus 4.7"),
    _m("claude/opus-4-6", "Opus 4.6"),
    _m("claude/opus-4-5", "Opus 4.5"),
    _m("claude/sonnet-4-7", "Sonnet 4.7"),
    _m("claude/sonnet-4-6", "Sonnet 4.6"),
    _m("claude/sonnet-4-5", "Sonnet 4.5"),
    _m("claude/haiku-4-5", "Haiku 4.5"),
    _m("gpt/5", "GPT-5"),
    _m("gpt/5-mini", "GPT-5 mini"),
    _m("gpt/4o", "GPT-4o"),
    _m("gpt/4o-mini", "GPT-4o mini"),
    _m("gemini/2.5-pro", "Gemini 2.5 Pro"),
    _m("gemini/2.5-flash", "Gemini 2.5 Flash"),
    _m("gemini/2.0-flash", "Gemini 2.0 Flash"),
)

MODELS: Final = MappingProxyType({m.slug: m for m in _CATALOG})
"""Every known slug to its :class:`ModelInfo`, in catalog order (read-only)."""

DEFAULT_MODEL: Final = "claude/sonnet-4-6"
"""The model of an agentic skill whose ``skill.yaml`` names none (A9)."""


class UnknownModel(LookupError):
    """A slug that is not in the catalog; the message lists the known ones."""

    def __init__(self, slug: str) -> None:
        super().__init__(unknown_model_message(slug))
        self.slug = slug


def is_known_model(slug: str) -> bool:
    """Whether ``slug`` is in the catalog (exact, case-sensitive match)."""
    return slug in MODELS


def known_models() -> list[str]:
    """Every known slug, in catalog order (a new list each call)."""
    return list(MODELS)


def model_info(slug: str) -> ModelInfo:
    """The catalog entry of ``slug``; :class:`UnknownModel` if there is none."""
    try:
        return MODELS[slug]
    except KeyError:
        raise UnknownModel(slug) from None


def unknown_model_message(slug: str) -> str:
    """The user-facing error for an unknown slug, listing every known one (K4)."""
    return f"unknown model {slug!r}; available models: {', '.join(MODELS)}"
