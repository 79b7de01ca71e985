"""The media routing table: complete for the pricing registry, overridable by the
operator, refusing what it cannot call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from puras_common.pricing import load_registry
from puras_runner.adapters.media_routes import DEFAULT_MEDIA_ROUTES_FILE, load_media_routes
from puras_runner.domain.media_routes import MediaRoute, MediaRoutesError, parse_media_routes


def test_every_priced_media_slug_has_a_route_and_no_other() -> None:
    registry = load_registry()
    shipped = json.loads(DEFAULT_MEDIA_ROUTES_FILE.read_text(encoding="utf-8"))
    assert sorted(shipped) == sorted(registry.media_slugs())
    routes = load_media_routes()
    assert sorted(routes) == sorted(registry.media_slugs())
    for slug in registry.media_slugs():
        # The route's kind is the registry's: auto resolves to it when the output is mute.
        assert routes[slug].kind == registry.media(slug).kind, slug


def test_shipped_routes_are_distinct_upstream_models() -> None:
    routes = load_media_routes()
    upstream = [route.upstream_model for route in routes.values()]
    assert len(set(upstream)) == len(upstream)


def test_unknown_slug_names_itself() -> None:
    with pytest.raises(KeyError, match="'acme/nothing' has no route"):
        load_media_routes()["acme/nothing"]


def test_override_file_replaces_fields(tmp_path: Path) -> None:
    override = tmp_path / "media.yaml"
    override.write_text("google/veo-3-t2v:\n  upstream_model: local/veo-stub\n")
    routes = load_media_routes(override)
    assert routes["google/veo-3-t2v"] == MediaRoute(upstream_model="local/veo-stub", kind="video")
    assert routes["google/imagen-4"].upstream_model == "fal-ai/imagen4/preview"


def test_override_file_as_json(tmp_path: Path) -> None:
    override = tmp_path / "media.json"
    override.write_text(json.dumps({"google/imagen-4": {"upstream_model": "x/y", "kind": "image"}}))
    assert load_media_routes(override)["google/imagen-4"].upstream_model == "x/y"


def test_empty_override_file_is_the_defaults(tmp_path: Path) -> None:
    override = tmp_path / "media.yaml"
    override.write_text("\n")
    assert load_media_routes(override) == load_media_routes()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("acme/x: {upstream_model: a/b}", r"'acme/x' is not a priced media slug"),
        (
            "google/imagen-4: {model: a/b}",
            r"unknown field\(s\) model; fields: kind, upstream_model",
        ),
        ("google/imagen-4: {upstream_model: ../admin}", r"upstream_model must be a model id"),
        ("google/imagen-4: {upstream_model: 'a/b?x=1'}", r"upstream_model must be a model id"),
        ("google/imagen-4: {upstream_model: ''}", r"upstream_model must be a model id"),
        ("google/imagen-4: {kind: picture}", r"kind must be one of image, video, audio"),
        ("google/imagen-4: fal-ai/x", r"must be a mapping of fields"),
        ("- a\n- b", r"must be a mapping of slug to fields"),
        ("a: [", r"media routes file"),
    ],
)
def test_bad_override_names_the_file_and_the_fault(tmp_path: Path, text: str, message: str) -> None:
    override = tmp_path / "media.yaml"
    override.write_text(text)
    with pytest.raises(MediaRoutesError, match=message) as caught:
        load_media_routes(override)
    assert str(override) in str(caught.value)


def test_missing_override_file(tmp_path: Path) -> None:
    with pytest.raises(MediaRoutesError, match="No such file"):
        load_media_routes(tmp_path / "absent.yaml")


def test_a_priced_slug_without_a_route_is_refused() -> None:
    with pytest.raises(MediaRoutesError, match="media model b/two has no route"):
        parse_media_routes(
            {"a/one": "image", "b/two": "video"},
            {"a/one": {"upstream_model": "up/one", "kind": "image"}},
        )
