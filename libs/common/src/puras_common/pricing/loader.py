"""Reading the registry shipped in this package (``registry.json``), once per process."""

from __future__ import annotations

import functools
from importlib import resources

import msgspec

from puras_common.pricing.registry import Registry
from puras_common.pricing.types import RegistryData

__all__ = ["load_registry", "parse_registry"]


def parse_registry(raw: bytes) -> Registry:
    """A registry from the JSON text of one (a malformed file fails loudly, naming the
    field)."""
    return Registry(msgspec.json.decode(raw, type=RegistryData))


@functools.cache
def load_registry() -> Registry:
    """The registry this release ships (cached: the file is part of the code)."""
    raw = resources.files("puras_common.pricing").joinpath("registry.json").read_bytes()
    return parse_registry(raw)
