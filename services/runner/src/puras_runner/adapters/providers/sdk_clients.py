"""The :class:`ModelClients` of the runner: one SDK client per provider, endpoint and key.

Where the endpoint and the key come from, first match wins:

1. the route's own ``base_url`` / ``api_key_env`` (how ``gemini/*`` reaches Gemini's
   OpenAI-compatible endpoint with ``GEMINI_API_KEY``);
2. the operator's settings for the provider (:class:`ProviderEndpoint`);
3. the SDK's own environment variables, read as the SDK reads them:
   ``ANTHROPIC_API_KEY`` (or ``ANTHROPIC_AUTH_TOKEN``), ``ANTHROPIC_BASE_URL``,
   ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``.

Keys only ever come from the runner's environment and settings, never from a project.
They are resolved here and handed to the SDK explicitly, so the SDK does not go looking
for credentials of its own (profiles, config files) behind the operator's back.

An OpenAI-compatible local server (Ollama, vLLM, llama.cpp) usually wants no key, but the
SDK refuses to start without one: with a base URL and no key the client sends
:data:`NO_KEY_PLACEHOLDER`, which such servers ignore (one that does check it answers
401, and the error names the variable to set). Neither a key nor a base URL, or no key
for a route that names its key variable: every call fails with a :class:`ProviderError`
that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import anthropic
import openai

from puras_runner.adapters.providers.anthropic_messages import AnthropicMessagesClient
from puras_runner.adapters.providers.errors import endpoint_label, provider_label
from puras_runner.adapters.providers.openai_chat import OpenAIChatClient
from puras_runner.app.ports import ModelClient
from puras_runner.domain.agent.conversation import (
    ModelReply,
    ModelRequest,
    ModelRoute,
    OnText,
    ProviderName,
)
from puras_runner.domain.agent.errors import ProviderError

__all__ = ["NO_KEY_PLACEHOLDER", "ProviderEndpoint", "SdkModelClients"]

NO_KEY_PLACEHOLDER: Final = "no-key-configured"
"""The key sent to a configured base URL when no key is set (see the module doc)."""

DEFAULT_MAX_RETRIES: Final = 4
DEFAULT_TIMEOUT_S: Final = 600.0

_ENV: Final[Mapping[ProviderName, tuple[str, str]]] = {
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
}
_DEFAULT_BASE: Final[Mapping[ProviderName, str]] = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
}


@dataclass(frozen=True, slots=True)
class ProviderEndpoint:
    """The operator's settings for one provider; ``None`` leaves the SDK's variable."""

    base_url: str | None = None
    api_key: str | None = None

    def __repr__(self) -> str:
        # Settings get logged; the key must not be.
        key = "set" if self.api_key else None
        return f"ProviderEndpoint(base_url={self.base_url!r}, api_key={key})"


@dataclass(frozen=True, slots=True)
class _Resolved:
    base_url: str | None
    """``None``: the provider's public endpoint."""
    key: str | None
    key_env: str
    """The variable the key comes (or should come) from, for error messages."""
    auth_token: bool = False
    """The key is an ``ANTHROPIC_AUTH_TOKEN`` (sent as a bearer token)."""


class SdkModelClients:
    """Clients for the routes, made on first use and kept (they pool connections)."""

    def __init__(
        self,
        *,
        anthropic_endpoint: ProviderEndpoint | None = None,
        openai_endpoint: ProviderEndpoint | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        environ: Mapping[str, str] | None = None,
        retry_delay_s: float = 0.5,
    ) -> None:
        """``max_retries``: the SDKs' own retries of 408/409/429/5xx (Anthropic's 529
        overload too), backing off as ``retry-after`` says; a stream that fails after
        it started gets as many tries, ``retry_delay_s`` the first backoff step.
        ``environ``: where the SDK variables are read (the process environment by
        default)."""
        self._settings: dict[ProviderName, ProviderEndpoint] = {
            "anthropic": anthropic_endpoint or ProviderEndpoint(),
            "openai": openai_endpoint or ProviderEndpoint(),
        }
        self._max_retries = max_retries
        self._timeout_s = timeout_s
        self._retry_delay_s = retry_delay_s
        self._environ = environ if environ is not None else os.environ
        self._clients: dict[tuple[str, str | None, str | None], ModelClient] = {}
        self._sdks: list[anthropic.AsyncAnthropic | openai.AsyncOpenAI] = []

    def client(self, route: ModelRoute) -> ModelClient:
        cache_key = (route.provider, route.base_url, route.api_key_env)
        client = self._clients.get(cache_key)
        if client is None:
            client = self._clients[cache_key] = self._make(route)
        return client

    def configured(self, route: ModelRoute) -> bool:
        """Whether calls for the route can go anywhere (a key, or a keyless endpoint);
        ``False``: each call fails naming the variable to set."""
        return not isinstance(self.client(route), _Unconfigured)

    async def aclose(self) -> None:
        """Close the SDK clients' connection pools (the runner's shutdown)."""
        sdks, self._sdks = self._sdks, []
        self._clients.clear()
        for sdk in sdks:
            await sdk.close()

    def _make(self, route: ModelRoute) -> ModelClient:
        resolved = self._resolve(route)
        label = provider_label(route)
        if resolved.key is None and (resolved.base_url is None or route.api_key_env):
            # A route that names its own key variable (Gemini's) is a hosted API that
            # needs that key; only a bare endpoint may be a keyless local server.
            return _Unconfigured(label, resolved.key_env)
        key = resolved.key or NO_KEY_PLACEHOLDER
        base_url = resolved.base_url or _DEFAULT_BASE[route.provider]
        endpoint = endpoint_label(resolved.base_url)
        if route.provider == "anthropic":
            sdk_a = anthropic.AsyncAnthropic(
                api_key=None if resolved.auth_token else key,
                auth_token=key if resolved.auth_token else None,
                base_url=base_url,
                max_retries=self._max_retries,
                timeout=self._timeout_s,
            )
            self._sdks.append(sdk_a)
            return AnthropicMessagesClient(
                sdk_a,
                label=label,
                key_env=resolved.key_env,
                endpoint=endpoint,
                stream_retries=self._max_retries,
                retry_delay_s=self._retry_delay_s,
            )
        sdk_o = openai.AsyncOpenAI(
            api_key=key,
            base_url=base_url,
            max_retries=self._max_retries,
            timeout=self._timeout_s,
        )
        self._sdks.append(sdk_o)
        return OpenAIChatClient(
            sdk_o,
            label=label,
            key_env=resolved.key_env,
            endpoint=endpoint,
            max_completion_tokens=_is_openai(resolved.base_url),
            stream_retries=self._max_retries,
            retry_delay_s=self._retry_delay_s,
        )

    def _resolve(self, route: ModelRoute) -> _Resolved:
        key_var, base_var = _ENV[route.provider]
        settings = self._settings[route.provider]
        env = self._environ
        base_url = route.base_url or settings.base_url or env.get(base_var) or None
        if route.api_key_env:
            return _Resolved(base_url, env.get(route.api_key_env) or None, route.api_key_env)
        if settings.api_key:
            return _Resolved(base_url, settings.api_key, key_var)
        key = env.get(key_var) or None
        if key is None and route.provider == "anthropic" and env.get("ANTHROPIC_AUTH_TOKEN"):
            return _Resolved(base_url, env["ANTHROPIC_AUTH_TOKEN"], key_var, auth_token=True)
        return _Resolved(base_url, key, key_var)


def _is_openai(base_url: str | None) -> bool:
    """OpenAI's own API (it wants ``max_completion_tokens``), not a compatible server."""
    return base_url is None or urlsplit(base_url).hostname == "api.openai.com"


class _Unconfigured:
    """The client of a provider with neither a key nor an endpoint: each call fails
    with what to set (the run fails at its first model call, not the runner at start)."""

    def __init__(self, label: str, key_env: str) -> None:
        self._error = (label, key_env)

    async def respond(self, request: ModelRequest, on_text: OnText) -> ModelReply:
        label, key_env = self._error
        raise ProviderError(
            label,
            f"no API key is configured for model {request.route.slug}: set {key_env} "
            "in the runner's environment (or its settings)",
        )
