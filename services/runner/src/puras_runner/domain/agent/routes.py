"""Which upstream serves each model slug (A9: configuration, not code).

The default table ships as data (``puras_runner/data/model_routes.json``); an operator
file (``PURAS_MODEL_ROUTES_FILE``, JSON or YAML) is merged over it: per slug, the fields
it names replace the default's. The key ``"*"`` applies its fields to every slug first
(one local OpenAI-compatible server for all of them, say), then the per-slug entries
apply. Only slugs of the model catalog may be routed: deploy-time validation knows
those, and a route for a slug no skill can name would be dead configuration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final, get_args

from puras_common.model_catalog import MODELS, known_models
from puras_runner.domain.agent.conversation import ModelRoute, ProviderName

__all__ = ["ModelRoutes", "RoutesError", "parse_routes"]

_FIELDS: Final = {f.name for f in dataclasses.fields(ModelRoute)} - {"slug"}
_PROVIDERS: Final = get_args(ProviderName)


class RoutesError(ValueError):
    """The routing table is invalid; ``str()`` names the slug and field (operator error)."""


class ModelRoutes:
    """Slug → :class:`ModelRoute`, complete for every slug of the catalog."""

    def __init__(self, routes: Mapping[str, ModelRoute]) -> None:
        self._routes = dict(routes)

    def get(self, slug: str) -> ModelRoute:
        route = self._routes.get(slug)
        if route is None:
            # Deploy-time validation refuses unknown slugs; a deployment recorded by a
            # newer gateway than this runner is the only way here.
            raise KeyError(
                f"model {slug!r} has no route on this runner; known: {', '.join(self._routes)}"
            )
        return route

    def __iter__(self) -> Any:
        return iter(self._routes.values())


def parse_routes(
    defaults: Mapping[str, Any], override: Mapping[str, Any] | None = None
) -> ModelRoutes:
    """The table from the shipped defaults and the operator's override (both decoded
    JSON/YAML mappings); raises :class:`RoutesError`."""
    override = dict(override or {})
    star = override.pop("*", None)
    routes: dict[str, ModelRoute] = {}
    for slug in known_models():
        fields: dict[str, Any] = {}
        for source, where in (
            (defaults.get(slug), "defaults"),
            (star, "*"),
            (override.get(slug), slug),
        ):
            if source is None:
                continue
            if not isinstance(source, Mapping):
                raise RoutesError(f"model route {where}: must be a mapping of fields")
            unknown = set(source) - _FIELDS
            if unknown:
                raise RoutesError(
                    f"model route {where}: unknown field(s) {', '.join(sorted(unknown))}; "
                    f"fields: {', '.join(sorted(_FIELDS))}"
                )
            fields.update(source)
        if not fields:
            raise RoutesError(f"model {slug} has no route")
        routes[slug] = _route(slug, fields)
    for slug in override:
        if slug not in MODELS:
            raise RoutesError(
                f"model route {slug!r}: not a model slug; slugs: {', '.join(known_models())}"
            )
    return ModelRoutes(routes)


def _route(slug: str, fields: dict[str, Any]) -> ModelRoute:
    provider = fields.get("provider")
    if provider not in _PROVIDERS:
        raise RoutesError(
            f"model route {slug}: provider must be one of {', '.join(_PROVIDERS)}, not {provider!r}"
        )
    upstream = fields.get("upstream_model")
    if not isinstance(upstream, str) or not upstream:
        raise RoutesError(f"model route {slug}: upstream_model must be a non-empty string")
    for name in ("vision", "pdf"):
        if not isinstance(fields.get(name, False), bool):
            raise RoutesError(f"model route {slug}: {name} must be true or false")
    for name in ("context_window", "max_output_tokens"):
        value = fields.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise RoutesError(f"model route {slug}: {name} must be a positive whole number")
    for name in ("base_url", "api_key_env"):
        value = fields.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise RoutesError(f"model route {slug}: {name} must be a non-empty string or null")
    return ModelRoute(slug=slug, **fields)
