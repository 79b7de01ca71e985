"""Another try for a stream that fails after it started.

The SDKs retry a request until its response starts; an error after that (Anthropic's
``overloaded_error`` event inside a 200 stream, a server error chunk, a connection cut
off mid-stream) reaches the caller as is. Such a call is tried again, with the SDKs'
backoff, as long as none of its text has reached ``on_text`` yet: the live feed must
not show a response's beginning twice, and the durable log only ever gets whole replies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from puras_runner.domain.agent.conversation import ModelReply, OnText
from puras_runner.domain.agent.errors import ProviderError

__all__ = ["StreamInterrupted", "is_transient_body", "retry_interrupted"]

MAX_DELAY_S: Final = 8.0
"""The SDKs' own cap on a backoff step."""

_TRANSIENT_TYPES: Final = frozenset(
    {"overloaded_error", "api_error", "rate_limit_error", "server_error", "rate_limit_exceeded"}
)
"""Error types of a started stream that mean "try again" (Anthropic's and OpenAI's)."""


class StreamInterrupted(Exception):
    """A started stream failed in a way another try may not; ``error`` is what the
    caller gets when no try is left."""

    def __init__(self, error: ProviderError) -> None:
        super().__init__(str(error))
        self.error = error


def is_transient_body(body: object) -> bool:
    """An error body (or its ``error`` member) of a type worth another try."""
    inner = body.get("error", body) if isinstance(body, Mapping) else body
    return isinstance(inner, Mapping) and inner.get("type") in _TRANSIENT_TYPES


async def retry_interrupted(
    once: Callable[[OnText], Awaitable[ModelReply]],
    on_text: OnText,
    *,
    retries: int,
    delay_s: float,
) -> ModelReply:
    """``once(relay)`` until it returns, raises a :class:`ProviderError`, or raises
    :class:`StreamInterrupted` after text went out or with no try left."""
    attempt = 0
    while True:
        streamed = False

        def relay(text: str) -> None:
            nonlocal streamed
            streamed = True
            on_text(text)

        try:
            return await once(relay)
        except StreamInterrupted as exc:
            if streamed or attempt >= retries:
                raise exc.error from None
        await asyncio.sleep(min(delay_s * 2.0**attempt, MAX_DELAY_S))
        attempt += 1
