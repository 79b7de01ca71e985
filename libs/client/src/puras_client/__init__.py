"""The HTTP client of the Puras API: :class:`Puras` / :class:`AsyncPuras` for apps, and
the lower-level :class:`Client` / :class:`AsyncClient` the ``puras`` CLI and the MCP
server share.

:mod:`puras_client.calls` spells every path and body once; :class:`Client` (sync) and
:class:`AsyncClient` send them and raise the same errors. It depends on httpx only, so
both front ends stay free of the server packages.
"""

from puras_client import calls
from puras_client.app import AsyncPuras, Puras
from puras_client.calls import Call
from puras_client.errors import (
    ApiError,
    ApiTimeout,
    ApiUnreachable,
    BadRequest,
    ClientError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    Unauthorized,
    UnprocessableEntity,
    error_from_response,
    unreachable_reason,
)
from puras_client.http import AsyncClient, Client, Hints
from puras_client.models import (
    TERMINAL_STATUSES,
    Balance,
    Deployment,
    JobEvent,
    JobOut,
    JobPage,
    Skill,
    Upload,
)
from puras_client.sse import SseEvent, SseParser, iter_sse

__all__ = [
    "TERMINAL_STATUSES",
    "ApiError",
    "ApiTimeout",
    "ApiUnreachable",
    "AsyncClient",
    "AsyncPuras",
    "BadRequest",
    "Balance",
    "Call",
    "Client",
    "ClientError",
    "Conflict",
    "Deployment",
    "Hints",
    "JobEvent",
    "JobOut",
    "JobPage",
    "NotFound",
    "PayloadTooLarge",
    "Puras",
    "RateLimited",
    "ServerError",
    "Skill",
    "SseEvent",
    "SseParser",
    "Unauthorized",
    "UnprocessableEntity",
    "Upload",
    "calls",
    "error_from_response",
    "iter_sse",
    "unreachable_reason",
]
