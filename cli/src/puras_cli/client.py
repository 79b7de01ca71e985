"""A small synchronous client of the gateway's HTTP API, shared by the CLI and the dev stack.

Every failure becomes a :class:`PurasError` whose message is what a user should read:
the API's own ``{"error": {"code", "message"}}`` (or FastAPI's ``detail``), or, when
nothing answers, which address was tried and how to start a stack there.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

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


class PurasError(Exception):
    """Anything the CLI reports as ``error: <message>``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(PurasError):
    """The API answered with an error status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class ApiUnreachable(PurasError):
    """Nothing answered at the API base (refused, unknown host, reset)."""

    def __init__(self, api_base: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the Puras API at {api_base} ({reason}); "
            "is the stack running? Start one with ./dev up "
            "(or point PURAS_API_BASE at a running gateway)"
        )
        self.api_base = api_base
        self.reason = reason


class ApiTimeout(PurasError):
    """The API accepted the connection but did not answer in time."""


def _detail_message(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        # FastAPI's request validation errors: [{"loc": [...], "msg": "..."}].
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


def error_from_response(resp: httpx.Response) -> ApiError:
    """The user-facing error of a non-2xx answer, whatever shape its body has."""
    reason = resp.reason_phrase or "error"
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        message = f"HTTP {resp.status_code} {reason}" + (f": {text[:300]}" if text else "")
        return ApiError(resp.status_code, "http_error", message)
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping) and "message" in err:
            return ApiError(resp.status_code, str(err.get("code", "error")), str(err["message"]))
        if isinstance(err, str):
            return ApiError(resp.status_code, "error", err)
        if "detail" in body:
            return ApiError(resp.status_code, "error", _detail_message(body["detail"]))
    return ApiError(resp.status_code, "http_error", f"HTTP {resp.status_code} {reason}: {body}")


@dataclass(frozen=True)
class SseEvent:
    """One dispatched Server-Sent Events frame."""

    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


def iter_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Frames from the lines of a ``text/event-stream`` body (the WHATWG parsing rules)."""
    event, last_id = "", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield SseEvent(event=event or "message", data="\n".join(data), id=last_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment: the server's keep-alive ping
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            last_id = value
    if data:
        yield SseEvent(event=event or "message", data="\n".join(data), id=last_id)


def _unreachable_reason(exc: httpx.TransportError) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED:
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    return "connection refused" if "refused" in text.lower() else (text or type(exc).__name__)


class PurasClient:
    """Calls ``/v1`` paths on ``api_base`` with ``Authorization: Bearer <token>``."""

    def __init__(
        self,
        api_base: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        headers = {"User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.api_base, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PurasClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def request(
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
        """The decoded JSON answer (``None`` for an empty one), or a :class:`PurasError`."""
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
            resp = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ApiTimeout(
                f"the Puras API at {self.api_base} did not answer {method} {path} in time"
            ) from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.api_base, _unreachable_reason(exc)) from exc
        if resp.status_code >= 400:
            raise error_from_response(resp)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise PurasError(
                f"{method} {path} answered {resp.status_code} with a body that is not JSON: "
                f"{resp.text[:200]!r}"
            ) from exc

    def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json_body=json_body, **kwargs)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def stream(self, path: str, *, read_timeout: float = 60.0) -> Iterator[SseEvent]:
        """Follow an SSE endpoint until the server ends the stream.

        ``read_timeout`` bounds the silence between two lines; the gateway pings every
        15 s, so a longer silence means the connection is dead, not that the job is slow.
        """
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            with self._http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise error_from_response(resp)
                yield from iter_sse(resp.iter_lines())
        except httpx.TimeoutException as exc:
            raise ApiTimeout(
                f"the event stream {path} at {self.api_base} went silent for {read_timeout:.0f}s"
            ) from exc
        except httpx.TransportError as exc:
            raise ApiUnreachable(self.api_base, _unreachable_reason(exc)) from exc
