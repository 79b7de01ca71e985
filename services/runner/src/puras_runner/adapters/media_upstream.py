"""The media upstream (SPEC S2): one HTTP API serving every media slug, over a queue.

The protocol is a job queue. ``POST {base}/{upstream_model}`` with the inputs as the
JSON body (header ``Authorization: Key <key>``) answers ``{request_id, status_url,
response_url, cancel_url}``; ``GET status_url`` says ``IN_QUEUE``, ``IN_PROGRESS`` or
``COMPLETED`` (or ``FAILED`` / ``ERROR`` with an ``error``); ``GET response_url`` is the
model's JSON result, or a 4xx/5xx whose ``{"detail": ...}`` says why it failed.

What this adapter guarantees:

* A submit is never retried: the upstream may have queued (and will bill) a request
  whose answer was lost, and a second submit would be a second bill. Status and result
  reads are idempotent and are retried on transient failures, within the deadline.
* One deadline covers the whole call; when it passes the request is cancelled upstream
  (best effort) and the error says the model took too long.
* The key goes only to the configured upstream's origin: status and result URLs the
  upstream hands back on another host are refused, and output files are downloaded
  without it. The key is never logged nor part of an error.
* Output files are downloaded under the runner's SSRF policy (the connection backend of
  :mod:`puras_runner.adapters.fetch`: public addresses only, unless the operator allows
  a network), streamed to disk under a byte cap.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote_to_bytes

import httpcore
import httpx

from puras_common.logging import get_logger
from puras_runner.adapters.fetch import (
    MAX_REDIRECTS,
    Resolver,
    system_resolver,
)
from puras_runner.adapters.fetch import _checked_url as checked_url

# The SSRF policy lives in fetch's connection backend: reused, not copied, so the
# media download and the agent's fetches can never drift apart.
from puras_runner.adapters.fetch import _CheckedBackend as CheckedBackend
from puras_runner.adapters.fetch import _PoolTransport as PoolTransport
from puras_runner.domain.agent.errors import FetchFailed

__all__ = [
    "DownloadedMedia",
    "MediaUpstream",
    "MediaUpstreamError",
    "UpstreamResult",
    "readable_detail",
]

log = get_logger(__name__)

ClientSource = httpx.AsyncClient | Callable[[], httpx.AsyncClient] | None
"""A client the caller owns (kept open), a factory (one client per call, closed after),
or None (a default client per call)."""

_PENDING: Final = frozenset({"IN_QUEUE", "IN_PROGRESS"})
_FAILED: Final = frozenset({"FAILED", "ERROR", "CANCELLED", "CANCELED"})
_TRANSIENT_STATUS: Final = frozenset({408, 429, 500, 502, 503, 504})
_MAX_READ_FAILURES: Final = 5
"""Consecutive transient failures of one status or result read before the call fails."""
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_DETAIL_CHARS: Final = 1000
_CHUNK_BYTES: Final = 1024 * 1024
_CANCEL_TIMEOUT_S: Final = 5.0
_USER_AGENT: Final = "Puras-Media/0.1"


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    """A completed upstream request."""

    request_id: str
    """The upstream's id of the request (S2's ``request_id``)."""
    result: dict[str, Any]
    """The model's JSON result, as it returned it."""


@dataclass(frozen=True, slots=True)
class DownloadedMedia:
    """An output file saved to disk."""

    size: int
    """Bytes written."""
    content_type: str | None
    """The media type the server declared (no parameters, lower case), if any."""


class MediaUpstreamError(Exception):
    """A media call failed; ``str()`` says why, in the upstream's words where it gave
    some (``prompt: field required``), and never holds the key.

    ``status`` is the upstream's HTTP status (a 4xx is usually the inputs: most model
    errors are deterministic, fix them before calling again); None for a failure with
    no status (a timeout, a network error, a ``FAILED`` request).
    """

    def __init__(self, status: int | None, message: str) -> None:
        self.status = status
        self.message = message
        where = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"media model call failed: {where}{message}")


@dataclass(frozen=True, slots=True)
class _Queued:
    request_id: str
    status_url: str
    response_url: str
    cancel_url: str


class MediaUpstream:
    """The upstream media API client (see the module doc)."""

    def __init__(
        self,
        *,
        base_url: str,
        key: str,
        client: ClientSource = None,
        poll_interval_s: float = 0.5,
        max_poll_interval_s: float = 2.0,
        timeout_s: float = 600.0,
        max_output_bytes: int = 512 * 1024 * 1024,
        download_timeout_s: float = 300.0,
        request_timeout_s: float = 30.0,
        allow_networks: Sequence[str] = (),
        resolver: Resolver | None = None,
    ) -> None:
        """``base_url``: the queue's root (``https://queue.fal.run``); ``key``: its API
        key; ``poll_interval_s`` grows by half each poll up to ``max_poll_interval_s``;
        ``timeout_s``: the deadline of one whole call; ``max_output_bytes``: the cap of
        one downloaded output; ``allow_networks``: CIDRs output files may be fetched
        from although not public (the runner's ``egress_allow_networks``)."""
        base = httpx.URL(base_url.rstrip("/"))
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError(f"media upstream URL must be http(s)://host[/path], not {base_url!r}")
        if not key:
            raise ValueError("media upstream key is empty")
        if not 0 < poll_interval_s <= max_poll_interval_s:
            raise ValueError("poll interval must be positive and at most the maximum interval")
        self._base = base
        self._key = key
        self._client = client
        self._poll_s = poll_interval_s
        self._max_poll_s = max_poll_interval_s
        self._timeout_s = timeout_s
        self._max_bytes = max_output_bytes
        self._download_timeout_s = download_timeout_s
        self._request_timeout_s = request_timeout_s
        # A bad network raises ValueError here, at startup, as fetch's does.
        self._backend = CheckedBackend(_networks(allow_networks), resolver or system_resolver)

    def __repr__(self) -> str:
        return f"MediaUpstream(base_url={str(self._base)!r}, key='***')"

    # -- generate ---------------------------------------------------------------------

    async def generate(self, upstream_model: str, inputs: Mapping[str, Any]) -> UpstreamResult:
        """Submit ``inputs`` to ``upstream_model``, wait for it, and return its result;
        raises :class:`MediaUpstreamError`."""
        started = time.monotonic()
        queued: _Queued | None = None
        async with self._api() as client:
            try:
                async with asyncio.timeout(self._timeout_s):
                    queued = await self._submit(client, upstream_model, inputs)
                    polls = await self._wait(client, upstream_model, queued)
                    result = await self._result(client, upstream_model, queued)
            except TimeoutError:
                if queued is not None:
                    await self._cancel(client, queued)
                raise MediaUpstreamError(
                    None,
                    f"{upstream_model} did not finish within {self._timeout_s:g} s"
                    + (
                        f" (request {queued.request_id} was cancelled)"
                        if queued is not None
                        else ""
                    ),
                ) from None
        log.info(
            "media upstream completed",
            upstream_model=upstream_model,
            request_id=queued.request_id,
            polls=polls,
            seconds=round(time.monotonic() - started, 3),
        )
        return UpstreamResult(request_id=queued.request_id, result=result)

    @contextlib.asynccontextmanager
    async def _api(self) -> AsyncIterator[httpx.AsyncClient]:
        if isinstance(self._client, httpx.AsyncClient):
            yield self._client
            return
        client = (
            self._client()
            if self._client is not None
            else httpx.AsyncClient(timeout=self._request_timeout_s, follow_redirects=False)
        )
        async with client:
            yield client

    def _headers(self) -> dict[str, str]:
        # Per request, never on the client: a shared client must not carry the key to
        # whatever else it is used for.
        return {"Authorization": f"Key {self._key}", "Accept": "application/json"}

    async def _submit(
        self, client: httpx.AsyncClient, upstream_model: str, inputs: Mapping[str, Any]
    ) -> _Queued:
        url = f"{self._base}/{upstream_model.strip('/')}"
        try:
            response = await client.post(url, json=dict(inputs), headers=self._headers())
        except httpx.TimeoutException:
            # Not retried: the request may be queued upstream, and a second submit would
            # be billed a second time.
            raise MediaUpstreamError(
                None,
                f"submitting to {upstream_model} timed out; it was not retried, as the "
                "upstream may have queued it",
            ) from None
        except httpx.HTTPError as exc:
            raise MediaUpstreamError(
                None, f"cannot reach the media upstream at {self._base.host}: {_plain(exc)}"
            ) from None
        body = _json_or_none(response)
        if response.status_code >= 400:
            raise MediaUpstreamError(
                response.status_code, readable_detail(body, _reason(response, upstream_model))
            )
        if not isinstance(body, dict) or not isinstance(body.get("request_id"), str):
            raise MediaUpstreamError(
                response.status_code,
                f"the upstream accepted {upstream_model} but gave no request_id",
            )
        request_id = body["request_id"]
        # The upstream's own convention when it names no URL: the app is the model id's
        # first two segments (``fal-ai/veo3/fast`` -> ``fal-ai/veo3``).
        app = "/".join(upstream_model.strip("/").split("/")[:2])
        fallback = f"{self._base}/{app}/requests/{request_id}"
        queued = _Queued(
            request_id=request_id,
            status_url=self._own(body.get("status_url") or f"{fallback}/status", "status_url"),
            response_url=self._own(body.get("response_url") or fallback, "response_url"),
            cancel_url=self._own(body.get("cancel_url") or f"{fallback}/cancel", "cancel_url"),
        )
        log.info("media upstream submitted", upstream_model=upstream_model, request_id=request_id)
        return queued

    def _own(self, url: Any, what: str) -> str:
        """``url`` if it is on the configured upstream's origin (the key goes with it)."""
        try:
            parsed = httpx.URL(str(url))
        except (httpx.InvalidURL, TypeError):
            raise MediaUpstreamError(None, f"the upstream's {what} is not a URL") from None
        if (parsed.scheme, parsed.host, parsed.port) != (
            self._base.scheme,
            self._base.host,
            self._base.port,
        ):
            raise MediaUpstreamError(
                None,
                f"the upstream's {what} is on {parsed.host or 'no host'}, not "
                f"{self._base.host}; refused (the key is only sent to the configured upstream)",
            )
        return str(parsed)

    async def _wait(self, client: httpx.AsyncClient, upstream_model: str, queued: _Queued) -> int:
        """Poll until the request completes; the number of polls it took."""
        delay = self._poll_s
        polls = 0
        while True:
            code, body = await self._read(client, queued.status_url, f"{upstream_model} status")
            polls += 1
            if code >= 400:
                raise MediaUpstreamError(code, readable_detail(body, f"{upstream_model} status"))
            status = body.get("status") if isinstance(body, dict) else None
            if status == "COMPLETED":
                if isinstance(body, dict) and body.get("error"):
                    raise MediaUpstreamError(
                        None, f"{upstream_model} failed: {_text(body['error'])}"
                    )
                return polls
            if status in _FAILED:
                why = body.get("error") if isinstance(body, dict) else None
                raise MediaUpstreamError(
                    None,
                    f"{upstream_model} failed: {_text(why) if why else str(status).lower()}",
                )
            if status not in _PENDING:
                raise MediaUpstreamError(
                    None, f"{upstream_model}: the upstream reported an unknown status {status!r}"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, self._max_poll_s)

    async def _result(
        self, client: httpx.AsyncClient, upstream_model: str, queued: _Queued
    ) -> dict[str, Any]:
        code, body = await self._read(client, queued.response_url, f"{upstream_model} result")
        if code >= 400:
            raise MediaUpstreamError(code, readable_detail(body, f"{upstream_model} failed"))
        if not isinstance(body, dict):
            raise MediaUpstreamError(
                code, f"{upstream_model} returned a result that is not an object"
            )
        return body

    async def _read(self, client: httpx.AsyncClient, url: str, what: str) -> tuple[int, Any]:
        """GET ``url``: (status, decoded JSON body or None); transient failures are
        retried (the read is idempotent), up to :data:`_MAX_READ_FAILURES` in a row."""
        delay = self._poll_s
        for attempt in range(1, _MAX_READ_FAILURES + 1):
            last = attempt == _MAX_READ_FAILURES
            try:
                response = await client.get(url, headers=self._headers())
            except httpx.HTTPError as exc:
                if last:
                    raise MediaUpstreamError(
                        None, f"reading the {what} failed {attempt} times: {_plain(exc)}"
                    ) from None
                log.info("media upstream read retried", what=what, error=type(exc).__name__)
            else:
                if response.status_code not in _TRANSIENT_STATUS or last:
                    return response.status_code, _json_or_none(response)
                log.info("media upstream read retried", what=what, status=response.status_code)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_poll_s)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _cancel(self, client: httpx.AsyncClient, queued: _Queued) -> None:
        """Ask the upstream to drop a request we no longer wait for (best effort)."""
        try:
            await client.put(queued.cancel_url, headers=self._headers(), timeout=_CANCEL_TIMEOUT_S)
        except httpx.HTTPError as exc:
            log.info(
                "media upstream cancel failed",
                request_id=queued.request_id,
                error=type(exc).__name__,
            )

    # -- download ---------------------------------------------------------------------

    async def download(self, url: str, dest: Path) -> DownloadedMedia:
        """Save the output at ``url`` (http(s), or a ``data:`` URL some models answer
        with) to ``dest`` (its folder must exist); at most ``max_output_bytes``, under the
        SSRF policy. The file appears whole or not at all; raises
        :class:`MediaUpstreamError`."""
        partial = dest.with_name(f".{dest.name}.part")
        try:
            if url.strip().lower().startswith("data:"):
                downloaded = await self._save_data_url(url, partial)
            else:
                try:
                    async with asyncio.timeout(self._download_timeout_s):
                        downloaded = await self._save_http(url, partial)
                except TimeoutError:
                    raise MediaUpstreamError(
                        None,
                        f"downloading the output took longer than {self._download_timeout_s:g} s",
                    ) from None
            await asyncio.to_thread(os.replace, partial, dest)
            return downloaded
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    async def _save_data_url(self, url: str, partial: Path) -> DownloadedMedia:
        head, comma, payload = url.strip()[5:].partition(",")
        if not comma:
            raise MediaUpstreamError(None, "the output is a data: URL without data")
        params = head.split(";")
        try:
            data = (
                base64.b64decode(payload, validate=False)
                if "base64" in (p.strip().lower() for p in params[1:])
                else unquote_to_bytes(payload)
            )
        except (binascii.Error, ValueError):
            raise MediaUpstreamError(
                None, "the output is a data: URL that is not valid base64"
            ) from None
        if len(data) > self._max_bytes:
            raise _too_large(self._max_bytes)
        await asyncio.to_thread(partial.write_bytes, data)
        media_type = params[0].strip().lower() or None
        return DownloadedMedia(size=len(data), content_type=media_type)

    async def _save_http(self, url: str, partial: Path) -> DownloadedMedia:
        pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=self._backend
        )
        client = httpx.AsyncClient(
            transport=PoolTransport(pool),
            # Output URLs are the upstream's CDN: no key, no proxy or .netrc of the host.
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(self._download_timeout_s),
            headers={"User-Agent": _USER_AGENT, "Accept": "*/*"},
        )
        async with client:
            try:
                current = checked_url(url)
                for _ in range(MAX_REDIRECTS + 1):
                    async with client.stream("GET", current) as response:
                        if response.status_code in _REDIRECTS:
                            location = response.headers.get("Location", "").strip()
                            if not location:
                                raise MediaUpstreamError(
                                    response.status_code, "the output URL redirected nowhere"
                                )
                            current = checked_url(str(current.join(location)))
                            continue
                        if response.status_code >= 400:
                            raise MediaUpstreamError(
                                response.status_code, "downloading the output failed"
                            )
                        size = await self._stream_to(response, partial)
                        return DownloadedMedia(size=size, content_type=_media_type(response))
                raise MediaUpstreamError(
                    None, f"the output URL redirected more than {MAX_REDIRECTS} times"
                )
            except FetchFailed as exc:
                raise MediaUpstreamError(None, f"downloading the output: {exc}") from None
            except (httpx.HTTPError, httpcore.NetworkError, httpcore.ProtocolError) as exc:
                if isinstance(exc, httpx.TimeoutException | httpcore.TimeoutException):
                    raise MediaUpstreamError(
                        None,
                        f"downloading the output took longer than {self._download_timeout_s:g} s",
                    ) from None
                raise MediaUpstreamError(
                    None, f"downloading the output failed: {_plain(exc)}"
                ) from None

    async def _stream_to(self, response: httpx.Response, partial: Path) -> int:
        declared = response.headers.get("Content-Length", "").strip()
        encoded = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoded in ("", "identity") and declared.isdigit() and int(declared) > self._max_bytes:
            raise _too_large(self._max_bytes)
        total = 0
        buffer = bytearray()
        with partial.open("wb") as out:
            # Decoded bytes are counted: Content-Length may be absent, wrong, or that of
            # a compressed body many times smaller than what it inflates to.
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > self._max_bytes:
                    raise _too_large(self._max_bytes)
                buffer += chunk
                if len(buffer) >= _CHUNK_BYTES:
                    await asyncio.to_thread(out.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(out.write, bytes(buffer))
        return total


def readable_detail(body: Any, fallback: str) -> str:
    """The upstream's reason for an error, as one line: its ``detail`` (a message, or a
    list of pydantic-style errors shown as ``field: message``), else ``error`` or
    ``message``; ``fallback`` when it gave none."""
    detail: Any = None
    if isinstance(body, dict):
        for name in ("detail", "error", "message"):
            if body.get(name):
                detail = body[name]
                break
    elif isinstance(body, str) and body.strip():
        detail = body
    text = _text(detail) if detail else fallback
    return text if len(text) <= _DETAIL_CHARS else text[: _DETAIL_CHARS - 3] + "..."


def _text(detail: Any) -> str:
    if isinstance(detail, str):
        return detail.strip()
    if isinstance(detail, list):
        return "; ".join(_one_error(item) for item in detail) or "no detail"
    if isinstance(detail, dict):
        if "msg" in detail or "loc" in detail:
            return _one_error(detail)
        message = detail.get("message")
        if isinstance(message, str):
            return message
    return json.dumps(detail, separators=(",", ":"), default=str)


def _one_error(item: Any) -> str:
    """``{"loc": ["body", "prompt"], "msg": "field required"}`` -> ``prompt: field required``."""
    if not isinstance(item, dict):
        return _text(item)
    loc = item.get("loc")
    where = ""
    if isinstance(loc, list):
        parts = [str(p) for p in loc]
        if parts and parts[0] == "body":
            parts = parts[1:]
        where = ".".join(parts)
    message = item.get("msg") or item.get("message") or item.get("type") or "invalid"
    return f"{where}: {message}" if where else str(message)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:_DETAIL_CHARS] if response.text else None


def _reason(response: httpx.Response, upstream_model: str) -> str:
    return f"{upstream_model}: {response.reason_phrase or 'error'}"


def _media_type(response: httpx.Response) -> str | None:
    media_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    return media_type or None


def _plain(exc: BaseException) -> str:
    """An httpx error for a message: its text (a URL and a reason, never headers)."""
    return str(exc) or type(exc).__name__


def _too_large(max_bytes: int) -> MediaUpstreamError:
    mb = max_bytes / (1024 * 1024)
    shown = f"{mb:g}" if mb >= 1 else f"{mb:.3g}"
    return MediaUpstreamError(None, f"the output is larger than the {shown} MB limit")


def _networks(
    raw: Sequence[str],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for cidr in raw:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"allow_networks: {cidr!r} is not a network (write it as 10.0.0.0/8 or fd00::/8)"
            ) from None
    return tuple(networks)
