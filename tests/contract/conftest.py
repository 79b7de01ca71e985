"""Contract tests: the OpenAPI document against the gateway it describes.

The document is built from the app offline (``openapi_doc``); the live tests run it
against the whole stack (the fixtures of ``tests/stack_fixtures.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from stack_fixtures import admin, api, stack

from puras_gateway.bootstrap import Gateway
from puras_gateway.entrypoints.http import create_app
from puras_gateway.settings import GatewaySettings

__all__ = ["admin", "api", "openapi_doc", "stack"]


@pytest.fixture(scope="session")
def openapi_doc() -> dict[str, Any]:
    """``/openapi.json`` of a gateway app (building it needs no connection)."""
    return create_app(Gateway(GatewaySettings(env="dev"))).openapi()
