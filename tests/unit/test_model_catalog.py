"""The agent model catalog (SPEC A9)."""

from __future__ import annotations

import pytest

from puras_common.model_catalog import (
    DEFAULT_MODEL,
    MODELS,
    UnknownModel,
    is_known_model,
    known_models,
    model_info,
)

EXPECTED = [
    "claude/opus-4-7",
    "claude/opus-4-6",
    "claude/opus-4-5",
    "claude/sonnet-4-7",
    "claude/sonnet-4-6",
    "claude/sonnet-4-5",
    "claude/haiku-4-5",
    "gpt/5",
    "gpt/5-mini",
    "gpt/4o",
    "gpt/4o-mini",
    "gemini/2.5-pro",
    "gemini/2.5-flash",
    "gemini/2.0-flash",
]


def test_catalog_is_exactly_the_spec_slugs_in_order() -> None:
    assert known_models() == EXPECTED


def test_known_models_returns_a_fresh_list() -> None:
    known_models().clear()
    assert known_models() == EXPECTED


def test_default_model() -> None:
    assert DEFAULT_MODEL == "claude/sonnet-4-6"
    assert is_known_model(DEFAULT_MODEL)


@pytest.mark.parametrize("slug", EXPECTED)
def test_family_is_the_first_segment_and_every_model_has_vision(slug: str) -> None:
    info = model_info(slug)
    assert info.slug == slug
    assert info.family == slug.split("/")[0]
    assert info.vision is True
    assert info.label


@pytest.mark.parametrize("slug", EXPECTED)
def test_pdf_only_on_claude(slug: str) -> None:
    assert model_info(slug).pdf is (slug.split("/")[0] == "claude")


@pytest.mark.parametrize("slug", ["claude/sonnet-9", "Claude/Sonnet-4-6", "sonnet-4-6", ""])
def test_unknown_slugs(slug: str) -> None:
    assert not is_known_model(slug)
    with pytest.raises(UnknownModel) as err:
        model_info(slug)
    for known in EXPECTED:
        assert known in str(err.value)
    assert err.value.slug == slug


def test_catalog_is_read_only() -> None:
    with pytest.raises(TypeError):
        MODELS["x/y"] = MODELS[DEFAULT_MODEL]  # type: ignore[index]
