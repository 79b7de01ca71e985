"""The pricing registry and the pricing function (SPEC B1, B2): exact micros, by hand
from the published tables (published prices include the default 20 % margin)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from puras_common.events.types import ModelUsage
from puras_common.model_catalog import known_models
from puras_common.pricing import (
    PricingError,
    Registry,
    RegistryData,
    UnknownSlug,
    load_registry,
    parse_registry,
    usd,
)

# The raw docs' "Models and pricing" tables: slug -> (input, output) USD per 1M tokens.
PUBLISHED_MODELS = {
    "claude/opus-4-7": ("18.00", "90.00"),
    "claude/opus-4-6": ("18.00", "90.00"),
    "claude/opus-4-5": ("18.00", "90.00"),
    "claude/sonnet-4-7": ("3.60", "18.00"),
    "claude/sonnet-4-6": ("3.60", "18.00"),
    "claude/sonnet-4-5": ("3.60", "18.00"),
    "claude/haiku-4-5": ("0.30", "1.50"),
    "gpt/5": ("1.50", "12.00"),
    "gpt/5-mini": ("0.30", "2.40"),
    "gpt/4o": ("3.00", "12.00"),
    "gpt/4o-mini": ("0.18", "0.72"),
    "gemini/2.5-pro": ("1.50", "12.00"),
    "gemini/2.5-flash": ("0.09", "0.36"),
    "gemini/2.0-flash": ("0.12", "0.48"),
}

# The raw docs' "Media model reference" index: slug -> (kind, price of the default row).
PUBLISHED_MEDIA_INDEX = {
    "openai/gpt-image-2": ("image", "0.253"),
    "openai/gpt-image-2-edit": ("image", "0.263"),
    "bytedance/seedream-v4": ("image", "0.036"),
    "bytedance/seedream-v4-edit": ("image", "0.036"),
    "google/imagen-4": ("image", "0.060"),
    "kuaishou/kling-v3-image": ("image", "0.034"),
    "bytedance/seedance-2-t2v": ("video", "0.364"),
    "bytedance/seedance-2-i2v": ("video", "0.363"),
    "bytedance/seedance-2-r2v": ("video", "0.363"),
    "bytedance/seedance-2-fast-t2v": ("video", "0.290"),
    "bytedance/seedance-2-fast-i2v": ("video", "0.290"),
    "bytedance/seedance-2-fast-r2v": ("video", "0.290"),
    "kuaishou/kling-v3-t2v": ("video", "0.134"),
    "kuaishou/kling-v3-i2v": ("video", "0.134"),
    "google/veo-3-t2v": ("video", "0.600"),
    "google/veo-3-i2v": ("video", "0.240"),
    "google/veo-3-fast-t2v": ("video", "0.300"),
    "google/veo-3-fast-i2v": ("video", "0.300"),
}


def micros(usd_text: str) -> int:
    whole, _, frac = usd_text.partition(".")
    return int(whole) * 1_000_000 + int(frac.ljust(6, "0"))


@pytest.fixture(scope="module")
def reg() -> Registry:
    return load_registry()


def exact(value: object) -> int:
    """Every price is an int (never a float, never a bool)."""
    assert type(value) is int, f"{value!r} is a {type(value).__name__}"
    return value


# -- the registry covers the catalog ------------------------------------------------------


def test_every_catalog_model_is_priced_as_published(reg: Registry) -> None:
    assert set(reg.model_slugs()) == set(known_models()) == set(PUBLISHED_MODELS)
    for slug, (inp, out) in PUBLISHED_MODELS.items():
        p = reg.model(slug)
        assert (p.input, p.output) == (micros(inp), micros(out)), slug


def test_cache_rates_follow_each_providers_convention(reg: Registry) -> None:
    for slug in PUBLISHED_MODELS:
        p = reg.model(slug)
        if slug.startswith("claude/"):
            assert (p.cache_read * 10, p.cache_write * 4) == (p.input, p.input * 5), slug
        elif slug.startswith("gpt/"):
            assert (p.cache_read * 2, p.cache_write) == (p.input, 0), slug
        else:
            assert (p.cache_read * 4, p.cache_write) == (p.input, 0), slug


def test_every_media_slug_of_the_index_is_priced_at_its_default_row(reg: Registry) -> None:
    assert set(reg.media_slugs()) == set(PUBLISHED_MEDIA_INDEX)
    for slug, (kind, price) in PUBLISHED_MEDIA_INDEX.items():
        p = reg.media(slug)
        assert p.kind == kind, slug
        assert p.shape == ("per_call" if kind == "image" else "per_second"), slug
        assert p.rate == micros(price), slug
        # Priced with no conditional input at all, a call pays the index price.
        assert reg.media_cost(slug, {"duration": 1}) == micros(price), slug


def test_the_registry_names_its_version(reg: Registry) -> None:
    assert reg.version == "2026-12-01"
    assert reg.data.margin_pct_included == 20


# -- models -------------------------------------------------------------------------------


def test_a_million_input_tokens_cost_the_published_rate(reg: Registry) -> None:
    cost = reg.model_cost("claude/sonnet-4-6", ModelUsage(input_tokens=1_000_000))
    assert exact(cost) == 3_600_000


def test_one_token_rounds_up_to_the_whole_micro(reg: Registry) -> None:
    # 3.6 micros -> 4; one output token of sonnet is exactly 18 micros.
    assert exact(reg.model_cost("claude/sonnet-4-6", ModelUsage(input_tokens=1))) == 4
    assert exact(reg.model_cost("claude/sonnet-4-6", ModelUsage(output_tokens=1))) == 18
    # Rounding is once per call, not per token kind: 1 in (3.6) + 1 out (18) = 21.6 -> 22.
    both = ModelUsage(input_tokens=1, output_tokens=1)
    assert exact(reg.model_cost("claude/sonnet-4-6", both)) == 22
    assert exact(reg.model_cost("claude/sonnet-4-6", ModelUsage())) == 0


def test_cache_tokens_are_priced_at_their_rates(reg: Registry) -> None:
    # sonnet: cache read 0.36 $/M, cache write 4.50 $/M.
    usage = ModelUsage(
        input_tokens=1000, output_tokens=500, cache_read_tokens=10_000, cache_write_tokens=2000
    )
    # 1000*3.6 + 500*18 + 10000*0.36 + 2000*4.5 = 3600 + 9000 + 3600 + 9000 micros
    assert exact(reg.model_cost("claude/sonnet-4-6", usage)) == 25_200
    # gpt/4o-mini: cached input 0.09 $/M, no write charge: 10000*0.09 + 2000*0 + 1000*0.18
    # + 500*0.72 = 900 + 0 + 180 + 360
    assert exact(reg.model_cost("gpt/4o-mini", usage)) == 1440
    # gemini/2.5-flash: cached 0.0225 $/M: 10000*0.0225 + 1000*0.09 + 500*0.36 = 225+90+180
    assert exact(reg.model_cost("gemini/2.5-flash", usage)) == 495


def test_the_margin_scales_the_published_price(reg: Registry) -> None:
    usage = ModelUsage(input_tokens=1_000_000)
    # published 3.60 includes 20 %: upstream 3.00; margin 0 -> 3.00, 50 -> 4.50.
    assert exact(reg.model_cost("claude/sonnet-4-6", usage, margin_pct=0)) == 3_000_000
    assert exact(reg.model_cost("claude/sonnet-4-6", usage, margin_pct=50)) == 4_500_000
    # 1 token at margin 0: 3 micros exactly; at 50: 4.5 -> 5.
    one = ModelUsage(input_tokens=1)
    assert exact(reg.model_cost("claude/sonnet-4-6", one, margin_pct=0)) == 3
    assert exact(reg.model_cost("claude/sonnet-4-6", one, margin_pct=50)) == 5


@pytest.mark.parametrize("bad", [-1, True, 2.5])
def test_a_bad_margin_is_refused(reg: Registry, bad: Any) -> None:
    with pytest.raises(PricingError, match="margin_pct"):
        reg.model_cost("claude/sonnet-4-6", ModelUsage(input_tokens=1), margin_pct=bad)


def test_negative_tokens_are_refused_naming_the_field(reg: Registry) -> None:
    with pytest.raises(PricingError, match="output_tokens"):
        reg.model_cost("claude/sonnet-4-6", ModelUsage(output_tokens=-1))


def test_an_unknown_model_slug_raises_naming_it(reg: Registry) -> None:
    with pytest.raises(UnknownSlug, match="claude/nope") as ei:
        reg.model_cost("claude/nope", ModelUsage(input_tokens=1))
    assert ei.value.slug == "claude/nope"
    assert "claude/sonnet-4-6" in str(ei.value)


# -- media --------------------------------------------------------------------------------


def test_per_call_times_the_number_of_outputs(reg: Registry) -> None:
    assert exact(reg.media_cost("bytedance/seedream-v4", {"prompt": "x"})) == 36_000
    assert exact(reg.media_cost("bytedance/seedream-v4", {"num_images": 3})) == 108_000
    assert exact(reg.media_cost("google/imagen-4", {"num_images": "2"})) == 120_000
    # What the upstream delivered wins over what was asked.
    assert (
        reg.media_cost("google/imagen-4", {"num_images": 4}, outputs={"num_outputs": 1}) == 60_000
    )


def test_per_second_uses_the_requested_duration(reg: Registry) -> None:
    assert exact(reg.media_cost("bytedance/seedance-2-t2v", {"duration": "5"})) == 1_820_000
    assert exact(reg.media_cost("bytedance/seedance-2-t2v", {"duration": 5})) == 1_820_000
    # Veo spells it "8s": 8 x 0.600 (audio off, the default row).
    assert exact(reg.media_cost("google/veo-3-t2v", {"duration": "8s"})) == 4_800_000


def test_per_second_falls_back_to_the_upstream_inference_time(reg: Registry) -> None:
    # duration "auto" lets the model decide: 7.53 s x 0.364 = 2.74092 $ exactly.
    out = {"inference_time": 7.53}
    assert exact(reg.media_cost("bytedance/seedance-2-t2v", {"duration": "auto"}, outputs=out)) == (
        2_740_920
    )
    # 0.1 s x 0.290 = 29 000 micros, with no float error on the way.
    assert reg.media_cost("bytedance/seedance-2-fast-t2v", {}, outputs={"inference_time": 0.1}) == (
        29_000
    )
    # A fraction of a micro rounds up: 0.000001 s x 0.364 $ = 0.364 micros -> 1.
    assert (
        reg.media_cost("bytedance/seedance-2-t2v", {}, outputs={"inference_time": "0.000001"}) == 1
    )


def test_per_second_with_no_duration_at_all_is_refused(reg: Registry) -> None:
    with pytest.raises(PricingError, match="inference_time"):
        reg.media_cost("bytedance/seedance-2-t2v", {"prompt": "x"})
    with pytest.raises(PricingError, match=r"inputs\.duration"):
        reg.media_cost("bytedance/seedance-2-t2v", {"duration": "long"})
    with pytest.raises(PricingError, match="negative"):
        reg.media_cost("bytedance/seedance-2-t2v", {"duration": -3})


def test_quality_by_size_table_and_its_default_row(reg: Registry) -> None:
    slug = "openai/gpt-image-2"
    assert exact(reg.media_cost(slug, {"prompt": "x"})) == 253_000  # high · 1024x1024
    assert reg.media_rate(slug, {})[1] is not None
    assert reg.media_cost(slug, {"quality": "low", "size": "1024x1536"}) == 6_000
    assert reg.media_cost(slug, {"quality": "medium", "image_size": "3840x2160"}) == 121_000
    size = {"width": 2560, "height": 1440}
    assert reg.media_cost(slug, {"quality": "low", "image_size": size, "num_images": 2}) == 16_800
    # Preset names with a row of their own; values with none take the default.
    assert reg.media_cost(slug, {"quality": "low", "image_size": "square_hd"}) == 7_200
    assert reg.media_cost(slug, {"quality": "low", "image_size": "landscape_4_3"}) == 6_000
    assert reg.media_cost(slug, {"quality": "auto", "size": "512x512"}) == 253_000
    assert reg.media_cost("openai/gpt-image-2-edit", {"quality": "medium"}) == 73_000


def test_audio_on_and_off(reg: Registry) -> None:
    veo = "google/veo-3-t2v"
    assert reg.media_cost(veo, {"duration": "8s", "generate_audio": True}) == 7_200_000
    assert reg.media_cost(veo, {"duration": "8s", "generate_audio": False}) == 4_800_000
    kling = "kuaishou/kling-v3-i2v"
    assert reg.media_cost(kling, {"duration": "5", "generate_audio": True}) == 1_010_000
    both = {"duration": "5", "generate_audio": True, "voice_control": True}
    assert reg.media_cost(kling, both) == 1_175_000
    # Voice control without audio has no row of its own: the default row (audio off).
    assert reg.media_cost(kling, {"duration": "5", "voice_control": True}) == 670_000


def test_with_and_without_a_reference_video(reg: Registry) -> None:
    r2v = "bytedance/seedance-2-r2v"
    assert reg.media_cost(r2v, {"duration": "10", "image_urls": ["a"]}) == 3_630_000
    assert reg.media_cost(r2v, {"duration": "10", "video_urls": ["v"]}) == 2_180_000
    assert reg.media_cost(r2v, {"duration": "10", "video_urls": []}) == 3_630_000
    assert reg.media_cost(
        "bytedance/seedance-2-fast-r2v", {"duration": 10, "video_urls": ["v"]}
    ) == (1_740_000)


def test_media_margin_0_and_50(reg: Registry) -> None:
    # 0.036 $ published -> 0.030 upstream; x 1.5 = 0.045.
    assert exact(reg.media_cost("bytedance/seedream-v4", {}, margin_pct=0)) == 30_000
    assert exact(reg.media_cost("bytedance/seedream-v4", {}, margin_pct=50)) == 45_000
    # 0.0072 at margin 50: 7200 x 150 / 120 = 9000.
    low = {"quality": "low", "size": "1024x1024"}
    assert reg.media_cost("openai/gpt-image-2", low, margin_pct=50) == 9_000


def test_an_unknown_media_slug_raises_naming_it(reg: Registry) -> None:
    with pytest.raises(UnknownSlug, match="acme/dream") as ei:
        reg.media_cost("acme/dream", {"prompt": "x"})
    assert ei.value.kind == "media"


def test_bad_media_quantities_are_refused_naming_the_field(reg: Registry) -> None:
    with pytest.raises(PricingError, match="num_images"):
        reg.media_cost("google/imagen-4", {"num_images": 0})
    with pytest.raises(PricingError, match="num_images"):
        reg.media_cost("google/imagen-4", {"num_images": True})
    with pytest.raises(PricingError, match="inputs must be an object"):
        reg.media_cost("google/imagen-4", [])  # type: ignore[arg-type]


# -- per megapixel: no published slug uses it yet, the shape is priced all the same --------


def megapixel_registry() -> Registry:
    data: dict[str, Any] = {
        "version": "test",
        "margin_pct_included": 20,
        "about": "",
        "models": [],
        "media": [
            {
                "slug": "acme/upscale",
                "kind": "image",
                "shape": "per_megapixel",
                "rate": 12_000,
                "default_width": 1000,
                "default_height": 1000,
            }
        ],
    }
    return parse_registry(msgspec.json.encode(data))


def test_per_megapixel() -> None:
    reg = megapixel_registry()
    # 0.012 $/MP x 1920 x 1080 / 10^6 = 24883.2 micros -> 24884.
    assert exact(reg.media_cost("acme/upscale", {"width": 1920, "height": 1080})) == 24_884
    assert reg.media_cost("acme/upscale", {"image_size": {"width": 2000, "height": 1000}}) == 24_000
    assert reg.media_cost("acme/upscale", {}) == 12_000
    assert reg.media_cost("acme/upscale", {}, margin_pct=0) == 10_000
    with pytest.raises(PricingError, match=r"inputs\.height"):
        reg.media_cost("acme/upscale", {"width": 10})


def test_a_registry_whose_rate_is_not_its_default_row_is_refused() -> None:
    data = msgspec.to_builtins(load_registry().data)
    veo = next(m for m in data["media"] if m["slug"] == "google/veo-3-t2v")
    veo["rate"] = 1
    with pytest.raises(PricingError, match="veo-3-t2v"):
        Registry(msgspec.convert(data, RegistryData))


# -- the listing --------------------------------------------------------------------------


def test_the_listing_names_every_slug_its_shape_and_rates(reg: Registry) -> None:
    out = reg.listing()
    assert out["version"] == "2026-12-01"
    assert out["margin_pct"] == 20
    assert [m["slug"] for m in out["models"]] == known_models()
    assert {m["slug"] for m in out["media"]} == set(PUBLISHED_MEDIA_INDEX)
    sonnet = next(m for m in out["models"] if m["slug"] == "claude/sonnet-4-6")
    assert sonnet["rates"]["input"] == {"micros": 3_600_000, "usd": "3.60"}
    assert sonnet["rates"]["cache_write"] == {"micros": 4_500_000, "usd": "4.50"}
    image = next(m for m in out["media"] if m["slug"] == "openai/gpt-image-2")
    assert image["shape"] == "per_call"
    assert image["conditional"] is True
    defaults = [r for r in image["rates"] if r["default"]]
    assert len(defaults) == 1
    assert defaults[0]["when"] == {"quality": "high", "size": "1024x1024"}
    assert defaults[0]["micros"] == image["rate"]["micros"] == 253_000
    assert len(image["rates"]) == 18


def test_the_listing_at_another_margin(reg: Registry) -> None:
    out = reg.listing(margin_pct=0)
    assert out["margin_pct"] == 0
    sonnet = next(m for m in out["models"] if m["slug"] == "claude/sonnet-4-6")
    assert sonnet["rates"]["input"] == {"micros": 3_000_000, "usd": "3.00"}


def test_usd_text_is_exact() -> None:
    assert usd(3_600_000) == "3.60"
    assert usd(7_200) == "0.0072"
    assert usd(22_500) == "0.0225"
    assert usd(0) == "0.00"


def test_a_registry_with_a_slug_twice_or_a_negative_rate_is_refused() -> None:
    data = msgspec.to_builtins(load_registry().data)
    data["models"].append(dict(data["models"][0]))
    with pytest.raises(PricingError, match="listed twice: claude/opus-4-7"):
        Registry(msgspec.convert(data, RegistryData))
    data = msgspec.to_builtins(load_registry().data)
    data["models"][0]["output"] = -1
    with pytest.raises(PricingError, match="negative"):
        Registry(msgspec.convert(data, RegistryData))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "5 minutes", True])
def test_a_duration_that_is_not_a_number_of_seconds_is_refused(reg: Registry, bad: Any) -> None:
    with pytest.raises(PricingError, match="duration"):
        reg.media_cost("google/veo-3-t2v", {"duration": bad})
