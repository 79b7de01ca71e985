"""A small asynchronous client of the Puras gateway's ``/v1`` HTTP API.

Every failure is an :class:`ApiFailure` whose message is what the caller (an AI coding
agent, mostly) should read to fix it: the gateway's own ``{"error": {"code",
"message"}}`` plus a hint for the codes that have an obvious next step, or, when nothing
answers, the ``api_base`` that was tried.
"""

from __future__ import annotations

import errno
import json
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from purasbackend_mcp import __version__

__all__ = [
    "Api",
    "ApiError",
    "ApiFailure",
    "ApiUnreachable",
    "SseEvent",
    "error_from_response",
    "seg",
]

USER_AGENT = f"purasbackend-mcp/{__version__}"

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
        "of the project folder) and job inputs under 4 MiB"
    ),
    "job_not_found": "list_jobs() shows this project's jobs",
    "deployment_not_found": "list_deployments() shows this project's deployments",
}


def _hint(code: str, message: str) -> str | None:
    if code == "skill_not_found" and "no active deployment" in message:
        return "deploy the project with push(project_dir)"
    if code == "not_found" and message.endswith("in the drive"):
        return "GET /v1/drive/list?prefix=<folder> lists the drive's files"
    return _HINTS.get(code)


class ApiFailure(Exception):
    """Anything a tool reports as an error; ``str()`` is the whole user-facing message."""


class ApiError(ApiFailure):
    """The API answered with an error status."""

    def __init__(self, status: int, code: str, message: str, *, method: str, path: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        hint = _hint(code, message)
        text = f"{method} {path} failed: {status} {code}: {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class ApiUnreachable(ApiFailure):
    """Nothing answered at ``api_base`` (refused, unknown host, reset, timed out)."""

    def __init__(self, api_base: str, reason: str) -> None:
        self.api_base = api_base
        self.reason = reason
        super().__init__(
            f"cannot reach the Puras API at {api_base} ({reason}); check that the gateway "
            "is running there (./dev up starts one) or point api_base elsewhere with "
            "configure(api_base, api_key)"
        )


def seg(value: str) -> str:
    """One path segment: an id from a tool argument never adds a segment or a query."""
    return quote(value, safe="")


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


def error_from_response(resp: httpx.Response, method: str, path: str) -> ApiError:
    """The :class:`ApiError` of a non-2xx answer, whatever shape its body has."""
    reason = resp.reason_phrase or "error"
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        message = f"HTTP {resp.status_code} {reason}" + (f": {text[:300]}" if text else "")
        return ApiError(resp.status_code, "http_error", message, method=method, path=path)
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping) and "message" in err:
            return ApiError(
                resp.status_code,
                str(err.get("code") or "error"),
                str(err["message"]),
                method=method,
                path=path,
            )
        if isinstance(err, str):
            return ApiError(resp.status_code, "error", err, method=method, path=path)
        if "detail" in body:
            return ApiError(
                resp.status_code,
                "error",
                _detail_message(body["detail"]),
                method=method,
                path=path,
            )
    return ApiError(
        resp.status_code,
        "http_error",
        f"HTTP {resp.status_code} {reason}: {str(body)[:300]}",
        method=method,
        path=path,
    )


def _unreachable_reason(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED:
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    return "connection refused" if "refused" in text.lower() else (text or type(exc).__name__)


@dataclass(frozen=True)
class SseEvent:
    """One dispatched Server-Sent Events frame."""

    event: str
    data: str
    id: str | None


class _SseParser:
    """The WHATWG ``text/event-stream`` rules, fed one line at a time."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> SseEvent | None:
        if line == "":
            return self.flush()
        if line.startswith(":"):
            return None  # a comment: the gateway's keep-alive ping
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            self._id = value
        return None

    def flush(self) -> SseEvent | None:
        out = None
        if self._data:
            out = SseEvent(event=self._event or "message", data="\n".join(self._data), id=self._id)
        self._event, self._data = "", []
        return out


class Api:
    """Calls ``/v1`` paths on ``api_base`` with ``Authorization: Bearer <key>``."""

    def __init__(
        self,
        api_base: str,
        api_key: str,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.api_base,
            headers={"User-Agent": USER_AGENT, "Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON answer (``None`` for an empty one), or an :class:`ApiFailure`."""
        kwargs: dict[str, Any] = {}
        if json_body is not None:
            kwargs["json"] = json_body
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if v is not None}
        if files is not None:
            kwargs["files"] = files
        if data is not None:
            kwargs["data"] = data
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            resp = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiFailure(
                f"the Puras API at {self.api_base} did not answer {method} {path} in time; "
                "it may be overloaded, try again"
            ) from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.api_base, _unreachable_reason(exc)) from exc
        if resp.status_code >= 400:
            raise error_from_response(resp, method, path)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise ApiFailure(
                f"{method} {path} at {self.api_base} answered {resp.status_code} with a body "
                f"that is not JSON ({resp.text[:200]!r}); is api_base the Puras gateway?"
            ) from exc

    async def stream(
        self, path: str, *, read_timeout: float = 45.0
    ) -> AsyncGenerator[SseEvent, None]:
        """The frames of an SSE endpoint until the server ends the stream.

        ``read_timeout`` bounds the silence between two lines: the gateway pings every
        15 s, so a longer silence means a dead connection, not a slow job. The caller
        bounds the whole follow (``anyio.move_on_after``).
        """
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            async with self._http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise error_from_response(resp, "GET", path)
                parser = _SseParser()
                async for line in resp.aiter_lines():
                    ev = parser.feed(line)
                    if ev is not None:
                        yield ev
                last = parser.flush()
                if last is not None:
                    yield last
        except httpx.TimeoutException as exc:
            raise ApiFailure(
                f"the event stream {path} at {self.api_base} went silent for "
                f"{read_timeout:.0f}s (the gateway pings every 15 s); call tail_job again"
            ) from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.api_base, _unreachable_reason(exc)) from exc
