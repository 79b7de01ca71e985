"""What pricing refuses: never a silent zero."""

from __future__ import annotations

__all__ = ["PricingError", "UnknownRegistryVersion", "UnknownSlug"]


class PricingError(ValueError):
    """A usage the registry cannot price (a bad quantity); the message names the field."""


class UnknownSlug(PricingError, LookupError):
    """A slug with no price in the registry: refused, never priced at zero."""

    def __init__(self, kind: str, slug: str, known: list[str]) -> None:
        super().__init__(
            f"no price for {kind} slug {slug!r}; priced {kind} slugs: {', '.join(known)}"
        )
        self.kind = kind
        self.slug = slug


class UnknownRegistryVersion(PricingError, LookupError):
    """A registry version this build does not ship: refused, never priced at zero."""

    def __init__(self, version: str, known: list[str]) -> None:
        super().__init__(
            f"no pricing registry version {version!r}; known versions: {', '.join(known)}"
        )
        self.version = version
