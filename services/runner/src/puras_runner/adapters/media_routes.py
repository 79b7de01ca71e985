"""Loading the media routing table: the shipped defaults and the operator's file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from puras_common.pricing import Registry, load_registry
from puras_runner.domain.media_routes import MediaRoutes, MediaRoutesError, parse_media_routes

__all__ = ["DEFAULT_MEDIA_ROUTES_FILE", "load_media_routes"]

DEFAULT_MEDIA_ROUTES_FILE = Path(__file__).resolve().parent.parent / "data" / "media_routes.json"


def load_media_routes(
    override: Path | None = None, *, registry: Registry | None = None
) -> MediaRoutes:
    """The table for every media slug of ``registry`` (default: the current one), with
    ``override`` (a JSON or YAML file of ``slug: {upstream_model, kind}``, any subset)
    merged over the defaults; raises :class:`MediaRoutesError` naming the file."""
    registry = registry or load_registry()
    slugs = {slug: registry.media(slug).kind for slug in registry.media_slugs()}
    defaults = json.loads(DEFAULT_MEDIA_ROUTES_FILE.read_text(encoding="utf-8"))
    table: Any = None
    if override is not None:
        try:
            text = override.read_text(encoding="utf-8")
            # YAML is a superset of JSON: one parser for both.
            table = yaml.safe_load(text) if text.strip() else {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise MediaRoutesError(f"media routes file {override}: {exc}") from None
        if not isinstance(table, dict):
            raise MediaRoutesError(
                f"media routes file {override}: must be a mapping of slug to fields"
            )
    try:
        return parse_media_routes(slugs, defaults, table)
    except MediaRoutesError as exc:
        where = f"media routes file {override}: " if override is not None else ""
        raise MediaRoutesError(f"{where}{exc}") from None
