"""A route that hands its endpoint the request as it is.

Every handler of the API takes the :class:`~starlette.requests.Request` (and its path
parameters, which are plain strings) and parses what it needs itself. FastAPI's own
request handler would still solve an (empty) dependency tree, open two exit stacks and
wrap the call in a second exception handler per request; on the submit path that is a
sizeable share of the gateway's CPU. This route is still an ``APIRoute``, so the OpenAPI
document describes it like any other (``entrypoints/openapi.py``); its errors propagate
to the app's exception handlers unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RawRoute"]


class RawRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if kwargs.get("max_body_size") is not None or kwargs.get("dependencies"):
            raise ValueError("a raw route reads its own body and has no dependencies")
        super().__init__(path, endpoint, **kwargs)
        self.app = _raw_app(endpoint)


def _raw_app(endpoint: Callable[..., Awaitable[Response]]) -> ASGIApp:
    if not inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{endpoint.__name__}: a raw route's endpoint is a coroutine function")
    params = inspect.signature(endpoint).parameters
    takes_request = "request" in params

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kwargs = scope.get("path_params") or {}
        if takes_request:
            response = await endpoint(request=Request(scope, receive, send), **kwargs)
        else:
            response = await endpoint(**kwargs)
        await response(scope, receive, send)

    return app
