"""The MCP server's HTTP client: :mod:`puras_client`'s, with messages in this server's terms.

The CLI and this server share one client (``puras_client``: the same calls, the same
errors). Every failure a tool reports is an :class:`ApiFailure`; :func:`tool_message` is
what the caller (an AI coding agent, mostly) reads to fix it: the call, the gateway's own
``{"error": {"code", "message"}}`` and a hint for the codes that have an obvious next
step here, or, when nothing answers, the ``api_base`` that was tried.
"""

from __future__ import annotations

import httpx

from puras_client import (
    ApiError,
    ApiUnreachable,
    AsyncClient,
    ClientError,
    Hints,
    SseEvent,
    error_from_response,
)
from puras_client.calls import seg
from purasbackend_mcp import __version__

__all__ = [
    "Api",
    "ApiError",
    "ApiFailure",
    "ApiUnreachable",
    "SseEvent",
    "error_from_response",
    "seg",
    "tool_message",
]

USER_AGENT = f"purasbackend-mcp/{__version__}"

ApiFailure = ClientError
"""Anything a tool reports as an error (the API's errors included)."""

MCP_HINTS = Hints(
    unreachable=(
        "check that the gateway is running there (./dev up starts one) or point api_base "
        "elsewhere with configure(api_base, api_key)"
    ),
    not_json="is api_base the Puras gateway?",
    stream_silent="call tail_job again",
)

# What to do next, for the error codes of docs/api.md whose message alone does not say
# it in this server's terms (the gateway's messages name CLI commands and HTTP paths).
_HINTS: dict[str, str] = {
    "unauthorized": (
        "check the key with show_config(); set a valid project key with "
        "configure(api_base, api_key)"
    ),
    "invalid_inputs": "fix `inputs` to match the skill's input_schema and submit again",
    "invalid_bundle": "fix the files named above and push again",
    "payload_too_large": (
        "keep bundles under the gateway's limit (50 MiB by default; leave large data out "
        "of the project folder), job inputs under 4 MiB and feedback comments short"
    ),
    "job_not_found": "list_jobs() shows this project's jobs",
    "deployment_not_found": "list_deployments() shows this project's deployments",
    "invalid_feedback": (
        "pass rating=-1 or 1, or a non-empty comment (or both), e.g. "
        "submit_job_feedback(job_id, rating=1)"
    ),
    "secret_not_found": "list_secrets() shows this project's secret names",
}


def _hint(code: str, message: str) -> str | None:
    if code == "skill_not_found" and "no active deployment" in message:
        return "deploy the project with push(project_dir)"
    if code == "not_found" and message.endswith("in the drive"):
        return "GET /v1/drive/list?prefix=<folder> lists the drive's files"
    return _HINTS.get(code)


def tool_message(exc: ClientError) -> str:
    """What a tool error says: ``GET /v1/x failed: 404 code: message (hint)`` for an API
    error, the client's own message otherwise."""
    if not isinstance(exc, ApiError):
        return exc.message
    hint = _hint(exc.code, exc.message)
    return exc.describe() + (f" ({hint})" if hint else "")


class Api(AsyncClient):
    """Calls ``/v1`` paths on ``api_base`` with ``Authorization: Bearer <key>``."""

    def __init__(
        self,
        api_base: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_base,
            api_key,
            user_agent=USER_AGENT,
            hints=MCP_HINTS,
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> Api:
        return self
