"""The CLI's HTTP client: :mod:`puras_client`'s, with the CLI's hints on its errors.

The CLI and the MCP server share one client (``puras_client``); this module names it in
the CLI's terms. Every failure is a :class:`PurasError` whose message is what a user
should read: the API's own ``{"error": {"code", "message"}}`` (or FastAPI's ``detail``),
or, when nothing answers, which address was tried and how to start a stack there.
"""

from __future__ import annotations

import httpx

from puras_client import (
    ApiError,
    ApiTimeout,
    ApiUnreachable,
    Client,
    ClientError,
    Hints,
    SseEvent,
    error_from_response,
    iter_sse,
)

__all__ = [
    "ApiError",
    "ApiTimeout",
    "ApiUnreachable",
    "PurasClient",
    "PurasError",
    "SseEvent",
    "error_from_response",
    "iter_sse",
]

USER_AGENT = "puras-cli/0.1"

PurasError = ClientError
"""Anything the CLI reports as ``error: <message>`` (the API's errors included)."""

CLI_HINTS = Hints(
    unreachable=(
        "is the stack running? Start one with ./dev up "
        "(or point PURAS_API_BASE at a running gateway)"
    ),
    not_json="is PURAS_API_BASE the Puras gateway?",
)


class PurasClient(Client):
    """Calls ``/v1`` paths on ``api_base`` with ``Authorization: Bearer <token>``."""

    def __init__(
        self,
        api_base: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_base,
            token,
            user_agent=USER_AGENT,
            hints=CLI_HINTS,
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> PurasClient:
        return self
