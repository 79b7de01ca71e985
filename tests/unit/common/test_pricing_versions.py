"""Registry versions: every version ever shipped loads by its name (the audit prices a
charge again with the one it names); the current one is the default; an unknown one is
refused, never priced at zero."""

from __future__ import annotations

import pytest

from puras_common.pricing import (
    CURRENT,
    PricingError,
    UnknownRegistryVersion,
    known_versions,
    load_registry,
)


@pytest.mark.parametrize("version", [None, CURRENT])
def test_the_current_registry_is_the_default_one(version: str | None) -> None:
    assert load_registry(version) is load_registry()
    assert load_registry(version).version == CURRENT


def test_every_shipped_version_loads_under_its_own_name() -> None:
    assert CURRENT in known_versions()
    for version in known_versions():
        assert load_registry(version).version == version


def test_an_unknown_version_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(UnknownRegistryVersion) as err:
        load_registry("1999-01-01")
    assert isinstance(err.value, PricingError)
    assert "no pricing registry version '1999-01-01'" in str(err.value)
    assert CURRENT in str(err.value)
