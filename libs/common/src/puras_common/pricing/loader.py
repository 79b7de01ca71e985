"""Reading the registries shipped in this package, by version, once per process.

``registries/<version>.json`` holds every version ever published: a charge names the
version that priced it, and the audit prices it again with that one, so a version is
never edited or removed once shipped (a price change is a new file). :data:`CURRENT`
names the one new usage is priced with.
"""

from __future__ import annotations

import functools
from importlib import resources

import msgspec

from puras_common.pricing.errors import UnknownRegistryVersion
from puras_common.pricing.registry import Registry
from puras_common.pricing.types import RegistryData

__all__ = ["CURRENT", "known_versions", "load_registry", "parse_registry"]

CURRENT = "2026-12-01"
"""The registry version this release prices new usage with."""

_DIR = "registries"


def parse_registry(raw: bytes) -> Registry:
    """A registry from the JSON text of one (a malformed file fails loudly, naming the
    field)."""
    return Registry(msgspec.json.decode(raw, type=RegistryData))


@functools.cache
def known_versions() -> tuple[str, ...]:
    """Every registry version this release can price with, oldest first."""
    files = resources.files("puras_common.pricing").joinpath(_DIR).iterdir()
    return tuple(sorted(f.name.removesuffix(".json") for f in files if f.name.endswith(".json")))


def load_registry(version: str | None = None) -> Registry:
    """The registry of ``version`` (default: :data:`CURRENT`); cached, the files are part
    of the code. An unknown version raises :class:`UnknownRegistryVersion`."""
    return _load(CURRENT if version is None else version)


@functools.cache
def _load(wanted: str) -> Registry:
    if wanted not in known_versions():
        raise UnknownRegistryVersion(wanted, list(known_versions()))
    raw = resources.files("puras_common.pricing").joinpath(_DIR, f"{wanted}.json").read_bytes()
    registry = parse_registry(raw)
    if registry.version != wanted:
        # The file name is how a version is found: one that says otherwise is a
        # packaging mistake, never something to price with.
        raise ValueError(f"{_DIR}/{wanted}.json holds registry version {registry.version!r}")
    return registry
