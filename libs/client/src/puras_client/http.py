"""The client of the gateway's ``/v1`` API: :class:`Client` for the CLI, :class:`AsyncClient`
for the MCP server, the same requests and the same errors from both.

Each sends ``Authorization: Bearer <token>``, turns every failure into a
:class:`~puras_client.errors.ClientError` (the API's own error, or what did not answer
where), and runs the :class:`~puras_client.calls.Call` values of :mod:`puras_client.calls`.
What a front end adds to the errors, in its own terms, is its :class:`Hints`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from puras_client.calls import Call
from puras_client.errors import (
    ApiTimeout,
    ApiUnreachable,
    ClientError,
    error_from_response,
    unreachable_reason,
)
from puras_client.sse import SseEvent, SseParser, iter_sse

__all__ = ["AsyncClient", "Client", "Hints"]


@dataclass(frozen=True)
class Hints:
    """What to do next, in the front end's terms, appended to the client's own errors."""

    unreachable: str = ""
    """Nothing answered at the API base (e.g. how to start a stack there)."""
    not_json: str = ""
    """Something answered, but not with JSON: probably not the gateway."""
    stream_silent: str = ""
    """An event stream went silent: how to follow the job again."""


def _kwargs(
    json_body: Any,
    params: Mapping[str, Any] | None,
    files: Mapping[str, Any] | None,
    data: Mapping[str, str] | None,
    timeout: float | None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if headers:
        kwargs["headers"] = dict(headers)
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
    return kwargs


def _headers(user_agent: str, token: str | None) -> dict[str, str]:
    headers = {"User-Agent": user_agent}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


_STREAM_READ_S = 60.0
"""Silence allowed between two lines of an event stream: the gateway pings every 15 s,
so a longer silence means the connection is dead, not that the job is slow."""


class _Base:
    def __init__(self, api_base: str, hints: Hints) -> None:
        self.api_base = api_base.rstrip("/")
        self.hints = hints

    def _with(self, text: str, hint: str) -> str:
        return f"{text}; {hint}" if hint else text

    def _timed_out(self, method: str, path: str, exc: Exception) -> ApiTimeout:
        return ApiTimeout(
            f"the Puras API at {self.api_base} did not answer {method} {path} in time; "
            "it may be overloaded, try again"
        )

    def _unreachable(self, exc: httpx.TransportError) -> ApiUnreachable:
        return ApiUnreachable(self.api_base, unreachable_reason(exc), self.hints.unreachable)

    def _silent(self, path: str, read_timeout: float) -> ApiTimeout:
        return ApiTimeout(
            self._with(
                f"the event stream {path} at {self.api_base} went silent for "
                f"{read_timeout:.0f}s (the gateway pings every 15 s)",
                self.hints.stream_silent,
            )
        )

    def _decode(self, resp: httpx.Response, method: str, path: str) -> Any:
        if resp.status_code >= 400:
            raise error_from_response(resp, method, path)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise ClientError(
                self._with(
                    f"{method} {path} at {self.api_base} answered {resp.status_code} with a "
                    f"body that is not JSON ({resp.text[:200]!r})",
                    self.hints.not_json,
                )
            ) from exc


class Client(_Base):
    """Synchronous (the CLI, the dev stack)."""

    def __init__(
        self,
        api_base: str,
        token: str | None = None,
        *,
        user_agent: str,
        hints: Hints = Hints(),
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(api_base, hints)
        self._http = httpx.Client(
            base_url=self.api_base,
            headers=_headers(user_agent, token),
            timeout=timeout,
            transport=transport,
        )

    @property
    def http(self) -> httpx.Client:
        """The underlying httpx client (base URL and auth set), for streamed bodies."""
        return self._http

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
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
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer (``None`` for an empty one), or a :class:`ClientError`."""
        kwargs = _kwargs(json_body, params, files, data, timeout, headers)
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise self._timed_out(method, path, exc) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        return self._decode(resp, method, path)

    def call(self, c: Call) -> Any:
        return self.request(
            c.method,
            c.path,
            json_body=c.json_body,
            params=c.params,
            files=c.files,
            data=c.data,
            timeout=c.timeout,
            headers=c.headers,
        )

    def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json_body=json_body, **kwargs)

    def put(self, path: str, json_body: Any = None, **kwargs: Any) -> Any:
        return self.request("PUT", path, json_body=json_body, **kwargs)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def stream(self, path: str, *, read_timeout: float = _STREAM_READ_S) -> Iterator[SseEvent]:
        """The frames of an SSE endpoint until the server ends the stream."""
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            with self._http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise error_from_response(resp, "GET", path)
                yield from iter_sse(resp.iter_lines())
        except httpx.TimeoutException as exc:
            raise self._silent(path, read_timeout) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc


class AsyncClient(_Base):
    """Asynchronous (the MCP server)."""

    def __init__(
        self,
        api_base: str,
        token: str | None = None,
        *,
        user_agent: str,
        hints: Hints = Hints(),
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(api_base, hints)
        self._http = httpx.AsyncClient(
            base_url=self.api_base,
            headers=_headers(user_agent, token),
            timeout=timeout,
            transport=transport,
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying httpx client (base URL and auth set), for streamed bodies."""
        return self._http

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
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
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer (``None`` for an empty one), or a :class:`ClientError`."""
        kwargs = _kwargs(json_body, params, files, data, timeout, headers)
        try:
            resp = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise self._timed_out(method, path, exc) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        return self._decode(resp, method, path)

    async def call(self, c: Call) -> Any:
        return await self.request(
            c.method,
            c.path,
            json_body=c.json_body,
            params=c.params,
            files=c.files,
            data=c.data,
            timeout=c.timeout,
            headers=c.headers,
        )

    async def stream(
        self, path: str, *, read_timeout: float = _STREAM_READ_S
    ) -> AsyncGenerator[SseEvent, None]:
        """The frames of an SSE endpoint until the server ends the stream; the caller
        bounds the whole follow (``anyio.move_on_after``)."""
        timeout = httpx.Timeout(10.0, read=read_timeout)
        try:
            async with self._http.stream(
                "GET", path, headers={"Accept": "text/event-stream"}, timeout=timeout
            ) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    raise error_from_response(resp, "GET", path)
                parser = SseParser()
                async for line in resp.aiter_lines():
                    frame = parser.feed(line)
                    if frame is not None:
                        yield frame
                last = parser.flush()
                if last is not None:
                    yield last
        except httpx.TimeoutException as exc:
            raise self._silent(path, read_timeout) from exc
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
