"""Which upstream model serves each media slug (configuration, not code).

The default table ships as data (``puras_runner/data/media_routes.json``); an operator
file (JSON or YAML) is merged over it: per slug, the fields it names replace the
default's. Only slugs of the pricing registry may be routed, and every one of them must
be: a routed slug without a price could not be billed, a priced slug without a route
would fail only when a user first calls it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args

from puras_common.pricing.types import MediaKind

__all__ = ["MediaRoute", "MediaRoutes", "MediaRoutesError", "parse_media_routes"]

_KINDS: Final = get_args(MediaKind)
_KIND_OF: Final[dict[str, MediaKind]] = {kind: kind for kind in _KINDS}
_UPSTREAM_MODEL: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*$")
"""An upstream model id is a URL path (``fal-ai/veo3/fast``): segments of safe
characters, so no route can point a submit at another path of the upstream."""


@dataclass(frozen=True, slots=True)
class MediaRoute:
    """How one media slug is called upstream."""

    upstream_model: str
    """The upstream's model id, the path the submit is posted to (``fal-ai/veo3``)."""
    kind: MediaKind
    """What it generates: the call's ``kind`` when ``auto`` cannot tell from the output."""


_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(MediaRoute))


class MediaRoutesError(ValueError):
    """The media routing table is invalid; ``str()`` names the slug and field."""


class MediaRoutes(Mapping[str, MediaRoute]):
    """Slug -> :class:`MediaRoute`, complete for every media slug of the registry."""

    def __init__(self, routes: Mapping[str, MediaRoute]) -> None:
        self._routes = dict(routes)

    def __getitem__(self, slug: str) -> MediaRoute:
        route = self._routes.get(slug)
        if route is None:
            # The gateway refuses slugs the registry does not price; a registry newer
            # than this runner is the only way here.
            raise KeyError(f"media model {slug!r} has no route on this runner")
        return route

    def __iter__(self) -> Iterator[str]:
        return iter(self._routes)

    def __len__(self) -> int:
        return len(self._routes)


def parse_media_routes(
    slugs: Mapping[str, MediaKind],
    defaults: Mapping[str, Any],
    override: Mapping[str, Any] | None = None,
) -> MediaRoutes:
    """The table for ``slugs`` (the registry's media slugs and kinds) from the shipped
    defaults and the operator's override (decoded JSON/YAML); raises
    :class:`MediaRoutesError`."""
    override = dict(override or {})
    for table, where in ((defaults, "defaults"), (override, "override")):
        stray = sorted(set(table) - set(slugs))
        if stray:
            raise MediaRoutesError(
                f"media routes ({where}): {', '.join(map(repr, stray))} is not a priced "
                f"media slug; slugs: {', '.join(slugs)}"
            )
    routes: dict[str, MediaRoute] = {}
    for slug in slugs:
        fields: dict[str, Any] = {}
        for source in (defaults.get(slug), override.get(slug)):
            if source is None:
                continue
            if not isinstance(source, Mapping):
                raise MediaRoutesError(f"media route {slug}: must be a mapping of fields")
            unknown = set(source) - _FIELDS
            if unknown:
                raise MediaRoutesError(
                    f"media route {slug}: unknown field(s) {', '.join(sorted(map(str, unknown)))}"
                    f"; fields: {', '.join(sorted(_FIELDS))}"
                )
            fields.update(source)
        if not fields:
            raise MediaRoutesError(f"media model {slug} has no route")
        routes[slug] = _route(slug, fields)
    return MediaRoutes(routes)


def _route(slug: str, fields: dict[str, Any]) -> MediaRoute:
    upstream = fields.get("upstream_model")
    if not isinstance(upstream, str) or not _UPSTREAM_MODEL.fullmatch(upstream):
        raise MediaRoutesError(
            f"media route {slug}: upstream_model must be a model id like fal-ai/veo3 "
            f"(path segments of letters, digits, . _ -), not {upstream!r}"
        )
    kind = fields.get("kind")
    if not isinstance(kind, str) or kind not in _KIND_OF:
        raise MediaRoutesError(
            f"media route {slug}: kind must be one of {', '.join(_KINDS)}, not {kind!r}"
        )
    return MediaRoute(upstream_model=upstream, kind=_KIND_OF[kind])
