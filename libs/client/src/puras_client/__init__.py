"""The HTTP client of the Puras API that the ``puras`` CLI and the MCP server share.

:mod:`puras_client.calls` spells every path and body once; :class:`Client` (sync) and
:class:`AsyncClient` send them and raise the same errors. It depends on httpx only, so
both front ends stay free of the server packages.
"""

from puras_client import calls
from puras_client.calls import Call
from puras_client.errors import (
    ApiError,
    ApiTimeout,
    ApiUnreachable,
    ClientError,
    error_from_response,
    unreachable_reason,
)
from puras_client.http import AsyncClient, Client, Hints
from puras_client.sse import SseEvent, SseParser, iter_sse

__all__ = [
    "ApiError",
    "ApiTimeout",
    "ApiUnreachable",
    "AsyncClient",
    "Call",
    "Client",
    "ClientError",
    "Hints",
    "SseEvent",
    "SseParser",
    "calls",
    "error_from_response",
    "iter_sse",
    "unreachable_reason",
]
