"""What both provider adapters share: naming the upstream and turning SDK failures into
:class:`ProviderError` (the job's error: provider, status, the upstream's own message,
never a key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from puras_runner.domain.agent.conversation import ModelRoute
from puras_runner.domain.agent.errors import ProviderError

__all__ = ["endpoint_label", "provider_label", "status_error", "transport_error"]

_MAX_DETAIL: Final = 500
"""Upstream messages are quoted up to this many characters (an HTML error page from a
proxy would otherwise fill the job's error)."""


def provider_label(route: ModelRoute) -> str:
    """How errors name the upstream: the wire protocol, or the slug's family when the
    route has an endpoint of its own (``gemini`` for Gemini's OpenAI-compatible API)."""
    if route.base_url:
        return route.slug.split("/", 1)[0]
    return route.provider


def endpoint_label(base_url: str | None) -> str:
    """``scheme://host[:port]`` of a base URL: enough to tell which server answered,
    without a path or any userinfo a URL might carry."""
    if not base_url:
        return ""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" if parts.scheme else base_url


def upstream_message(body: object, fallback: str) -> str:
    """The ``error.message`` of an Anthropic or OpenAI error body (the SDKs hand over
    either the whole body or its ``error`` member), else ``fallback``."""
    inner = body.get("error", body) if isinstance(body, Mapping) else body
    if isinstance(inner, Mapping):
        message = inner.get("message")
        kind = inner.get("type")
        if isinstance(message, str) and message:
            text = f"{kind}: {message}" if isinstance(kind, str) and kind else message
            return _cap(text)
    if isinstance(inner, str) and inner:
        return _cap(inner)
    return _cap(fallback)


def status_error(
    label: str,
    status: int,
    body: object,
    fallback: str,
    *,
    key_env: str | None,
    endpoint: str,
    secret: str | None = None,
) -> ProviderError:
    """The error for an HTTP error status the SDK gave up on (retries spent, or a status
    that is not retried). ``secret``: the key, masked should the upstream quote it."""
    message = upstream_message(body, fallback)
    if secret and len(secret) >= 8:
        message = message.replace(secret, "***")
    if status in (401, 403) and key_env:
        message += f" (check the key in {key_env})"
    if endpoint:
        message += f" [{endpoint}]"
    # A 200 here is an error event inside a started stream: there is no HTTP status
    # to report, only the upstream's error.
    return ProviderError(label, message, status=status if status >= 400 else None)


def transport_error(label: str, exc: BaseException, *, endpoint: str) -> ProviderError:
    """The error for a connection failure or timeout (after the SDK's retries)."""
    cause = exc.__cause__ or exc.__context__
    what = type(cause).__name__ if cause is not None else ""
    timed_out = "Timeout" in type(exc).__name__
    message = "the API call timed out" if timed_out else "the connection to the API failed"
    if what and "Timeout" not in what:
        message += f" ({what})"
    if endpoint:
        message += f" [{endpoint}]"
    return ProviderError(label, message)


def _cap(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
