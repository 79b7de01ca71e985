"""Loading the model routing table: the shipped defaults and the operator's file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from puras_runner.domain.agent.routes import ModelRoutes, RoutesError, parse_routes

__all__ = ["DEFAULT_ROUTES_FILE", "load_routes"]

DEFAULT_ROUTES_FILE = Path(__file__).resolve().parent.parent / "data" / "model_routes.json"


def load_routes(override_file: Path | None = None) -> ModelRoutes:
    """The table; raises :class:`RoutesError` naming the file and what is wrong."""
    defaults = json.loads(DEFAULT_ROUTES_FILE.read_text(encoding="utf-8"))
    override: Any = None
    if override_file is not None:
        try:
            text = override_file.read_text(encoding="utf-8")
            # YAML is a superset of JSON: one parser for both.
            override = yaml.safe_load(text) if text.strip() else {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise RoutesError(f"model routes file {override_file}: {exc}") from None
        if not isinstance(override, dict):
            raise RoutesError(
                f"model routes file {override_file}: must be a mapping of slug to fields"
            )
    try:
        return parse_routes(defaults, override)
    except RoutesError as exc:
        where = f"model routes file {override_file}: " if override_file is not None else ""
        raise RoutesError(f"{where}{exc}") from None
