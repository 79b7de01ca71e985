"""What goes wrong talking to the API, as exceptions whose message a person can act on.

The API's own ``{"error": {"code", "message"}}`` (or FastAPI's ``detail``) becomes an
:class:`ApiError`; nothing answering becomes :class:`ApiUnreachable`, naming the address
tried and, through the front end's ``hint``, how to fix it (the CLI says ``./dev up``,
the MCP server ``configure(api_base, api_key)``).
"""

from __future__ import annotations

import errno
import json
from collections.abc import Mapping
from typing import Any

import httpx

__all__ = [
    "ApiError",
    "ApiTimeout",
    "ApiUnreachable",
    "BadRequest",
    "ClientError",
    "Conflict",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ServerError",
    "Unauthorized",
    "UnprocessableEntity",
    "api_error",
    "error_from_response",
    "unreachable_reason",
]


class ClientError(Exception):
    """Anything a front end reports as an error; ``message`` (and ``str()``) says what."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(ClientError):
    """The API answered with an error status; ``message`` is the API's own."""

    def __init__(
        self, status: int, code: str, message: str, *, method: str = "", path: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.method = method
        self.path = path

    def describe(self) -> str:
        """``GET /v1/x failed: 404 job_not_found: <message>``: the call and the answer."""
        call = f"{self.method} {self.path} failed: " if self.method else ""
        return f"{call}{self.status} {self.code}: {self.message}"


class BadRequest(ApiError):
    """400: the request is malformed; the message names the field."""


class Unauthorized(ApiError):
    """401: no key, a wrong one, or a revoked one."""


class NotFound(ApiError):
    """404: no such thing in this project (another project's id is a 404 too)."""


class Conflict(ApiError):
    """409: e.g. an idempotency key reused with another body, cancelling a finished job."""


class PayloadTooLarge(ApiError):
    """413: a body or an upload over its cap."""


class UnprocessableEntity(ApiError):
    """422: the inputs break the skill's ``input_schema``."""


class RateLimited(ApiError):
    """429: too many requests; try again later."""


class ServerError(ApiError):
    """5xx: the gateway failed; the request may be retried."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: UnprocessableEntity,
    429: RateLimited,
}


def api_error(
    status: int, code: str, message: str, *, method: str = "", path: str = ""
) -> ApiError:
    """The :class:`ApiError` subclass of ``status`` (``ApiError`` itself for the others)."""
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    return cls(status, code, message, method=method, path=path)


class ApiUnreachable(ClientError):
    """Nothing answered at the API base (refused, unknown host, reset)."""

    def __init__(self, api_base: str, reason: str, hint: str = "") -> None:
        text = f"cannot reach the Puras API at {api_base} ({reason})"
        super().__init__(f"{text}; {hint}" if hint else text)
        self.api_base = api_base
        self.reason = reason


class ApiTimeout(ClientError):
    """The API took the connection but did not answer in time."""


def _detail_message(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):  # FastAPI validation errors: [{"loc": [...], "msg": ...}]
        parts = []
        for item in detail:
            if isinstance(item, Mapping):
                loc = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
                msg = str(item.get("msg", item))
                parts.append(f"{loc}: {msg}" if loc else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return json.dumps(detail)


def error_from_response(resp: httpx.Response, method: str = "", path: str = "") -> ApiError:
    """The :class:`ApiError` of a non-2xx answer, whatever shape its body has."""
    reason = resp.reason_phrase or "error"
    status = resp.status_code

    def err(code: str, message: str) -> ApiError:
        return api_error(status, code, message, method=method, path=path)

    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        return err("http_error", f"HTTP {status} {reason}" + (f": {text[:300]}" if text else ""))
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and "message" in error:
            return err(str(error.get("code") or "error"), str(error["message"]))
        if isinstance(error, str):
            return err("error", error)
        if "detail" in body:
            return err("error", _detail_message(body["detail"]))
    return err("http_error", f"HTTP {status} {reason}: {str(body)[:300]}")


def unreachable_reason(exc: httpx.TransportError) -> str:
    """``connection refused``, ``timed out``, or what the transport said."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED:
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    return "connection refused" if "refused" in text.lower() else (text or type(exc).__name__)
