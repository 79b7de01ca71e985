"""Anthropic Messages through the official SDK (``AsyncAnthropic``), streamed.

The neutral conversation becomes Messages API blocks; the stream's raw events are
folded into one :class:`ModelReply` here rather than by the SDK's ``MessageStream``
helper, so that a tool call whose arguments are not valid JSON becomes a tool call
the loop can answer (see :data:`~.tool_args.RAW_ARGUMENTS_KEY`) instead of an exception
in the middle of the stream.

Prompt caching: the system prompt and the tool definitions are the same on every
step of a run, so each carries a cache breakpoint; the last block of the conversation
carries a third one, so that step N+1 reads steps 1..N from the cache instead of paying
for them again (Anthropic allows four breakpoints per request).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Final

import anthropic
import httpx2
from anthropic.types import (
    CacheControlEphemeralParam,
    ContentBlockParam,
    TextBlockParam,
    ToolParam,
)

from puras_common.events.types import ModelUsage
from puras_runner.adapters.providers.errors import status_error, transport_error
from puras_runner.adapters.providers.stream_retry import (
    StreamInterrupted,
    is_transient_body,
    retry_interrupted,
)
from puras_runner.adapters.providers.tool_args import parse_arguments
from puras_runner.domain.agent.conversation import (
    AssistantBlock,
    Document,
    Image,
    Message,
    ModelReply,
    ModelRequest,
    OnText,
    Text,
    ToolResult,
    ToolUse,
    UserBlock,
)
from puras_runner.domain.agent.errors import ProviderError

__all__ = ["AnthropicMessagesClient", "to_messages"]

_EPHEMERAL: Final[CacheControlEphemeralParam] = {"type": "ephemeral"}
_STOP_REASONS: Final = {"stop_sequence": "end_turn"}
"""Anthropic's stop reasons that mean something else in the neutral vocabulary;
``end_turn``, ``tool_use`` and ``max_tokens`` already are, the rest pass through."""


class AnthropicMessagesClient:
    """One ``AsyncAnthropic`` (one endpoint and key) serving every Anthropic route."""

    def __init__(
        self,
        sdk: anthropic.AsyncAnthropic,
        *,
        label: str,
        key_env: str | None,
        endpoint: str = "",
        stream_retries: int = 4,
        retry_delay_s: float = 0.5,
    ) -> None:
        """``stream_retries`` / ``retry_delay_s``: tries of a call whose stream failed
        after it started, and the first backoff step (see :mod:`.stream_retry`)."""
        self._sdk = sdk
        self._label = label
        self._key_env = key_env
        self._endpoint = endpoint
        self._stream_retries = stream_retries
        self._retry_delay_s = retry_delay_s

    async def respond(self, request: ModelRequest, on_text: OnText) -> ModelReply:
        params: dict[str, Any] = {
            "model": request.route.upstream_model,
            "max_tokens": request.route.max_output_tokens,
            "messages": to_messages(request.messages, self._label),
        }
        if request.system:
            system: list[TextBlockParam] = [
                {"type": "text", "text": request.system, "cache_control": _EPHEMERAL}
            ]
            params["system"] = system
        if request.tools:
            tools: list[ToolParam] = [
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                for t in request.tools
            ]
            tools[-1]["cache_control"] = _EPHEMERAL
            params["tools"] = tools
        return await retry_interrupted(
            lambda relay: self._once(params, relay),
            on_text,
            retries=self._stream_retries,
            delay_s=self._retry_delay_s,
        )

    async def _once(self, params: dict[str, Any], on_text: OnText) -> ModelReply:
        opened = False
        try:
            stream = await self._sdk.messages.create(**params, stream=True)
            opened = True
            async with stream:
                return await _fold(stream, on_text)
        except anthropic.APIStatusError as exc:
            error = status_error(
                self._label,
                exc.status_code,
                exc.body,
                exc.message,
                key_env=self._key_env,
                endpoint=self._endpoint,
                secret=self._sdk.api_key or self._sdk.auth_token,
            )
            # A status error once the stream is open is an ``error`` event in it.
            if opened and is_transient_body(exc.body):
                raise StreamInterrupted(error) from None
            raise error from None
        except anthropic.APIConnectionError as exc:
            error = transport_error(self._label, exc, endpoint=self._endpoint)
            if opened:
                raise StreamInterrupted(error) from None
            raise error from None
        except anthropic.APIError as exc:
            # An error the SDK raised without an HTTP response (a malformed stream).
            raise ProviderError(self._label, exc.message) from None
        except (httpx2.TransportError, _Truncated):
            # The SDK retries only the request; a stream cut off after its start
            # surfaces as the HTTP client's own error, or as a stream that just ends.
            raise StreamInterrupted(
                ProviderError(self._label, f"the response stream broke off{_where(self._endpoint)}")
            ) from None


class _Truncated(Exception):
    """The stream ended without ``message_stop``."""


def _where(endpoint: str) -> str:
    return f" [{endpoint}]" if endpoint else ""


async def _fold(stream: Any, on_text: OnText) -> ModelReply:
    """Accumulate the raw stream events (``message_start``, ``content_block_*``,
    ``message_delta``, ``message_stop``) into the whole reply."""
    blocks: dict[int, dict[str, Any]] = {}
    usage: dict[str, int] = {}
    stop_reason = "end_turn"
    complete = False
    async for event in stream:
        kind = event.type
        if kind == "message_start":
            _merge_usage(usage, event.message.usage)
        elif kind == "content_block_start":
            block = event.content_block
            if block.type == "text":
                blocks[event.index] = {"type": "text", "text": block.text}
                if block.text:
                    on_text(block.text)
            elif block.type == "tool_use":
                blocks[event.index] = {
                    "type": "tool_use",
                    "id": block.id,
                    "name": block.name,
                    "json": "",
                    "input": block.input,
                }
            # Other blocks (thinking, server tools) are not part of the neutral
            # conversation and are not requested; they are skipped.
        elif kind == "content_block_delta":
            current = blocks.get(event.index)
            delta = event.delta
            if current is None:
                continue
            if delta.type == "text_delta" and current["type"] == "text":
                current["text"] += delta.text
                on_text(delta.text)
            elif delta.type == "input_json_delta" and current["type"] == "tool_use":
                current["json"] += delta.partial_json
        elif kind == "message_delta":
            if event.delta.stop_reason is not None:
                stop_reason = event.delta.stop_reason
            _merge_usage(usage, event.usage)
        elif kind == "message_stop":
            complete = True
    if not complete:
        # A dropped connection ends the SSE stream quietly; a partial response must not
        # pass for a whole one (the log would keep it as the step's answer).
        raise _Truncated
    content: list[AssistantBlock] = []
    for index in sorted(blocks):
        block = blocks[index]
        if block["type"] == "text":
            if block["text"]:
                content.append(Text(block["text"]))
        else:
            content.append(
                ToolUse(
                    id=block["id"],
                    name=block["name"],
                    input=_tool_input(block["json"], block["input"]),
                )
            )
    return ModelReply(
        content=tuple(content),
        stop_reason=_STOP_REASONS.get(stop_reason, stop_reason),
        usage=ModelUsage(
            input_tokens=usage.get("input_tokens", 0),
            output_tokens=usage.get("output_tokens", 0),
            cache_read_tokens=usage.get("cache_read_input_tokens", 0),
            cache_write_tokens=usage.get("cache_creation_input_tokens", 0),
        ),
    )


def _merge_usage(into: dict[str, int], usage: Any) -> None:
    # message_delta's counts are cumulative totals; a field it omits keeps the value
    # message_start gave.
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ):
        value = getattr(usage, name, None)
        if isinstance(value, int):
            into[name] = value


def _tool_input(text: str, start: object) -> dict[str, Any]:
    if not text:
        # No deltas: the input came whole in content_block_start (``{}`` for a tool
        # without parameters).
        return dict(start) if isinstance(start, dict) else {}
    return parse_arguments(text)


# -- the neutral conversation in Messages API blocks ----------------------------------


def to_messages(messages: Sequence[Message], label: str = "anthropic") -> list[dict[str, Any]]:
    """The conversation as ``messages``; the last block carries a cache breakpoint."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "user":
            blocks = _user_blocks(message.content, label)
        else:
            blocks = [_assistant_block(b, label) for b in message.content if _non_empty(b)]
        if blocks:
            out.append({"role": message.role, "content": blocks})
    if out:
        last = out[-1]["content"]
        if isinstance(last, list) and last:
            last[-1]["cache_control"] = _EPHEMERAL
    return out


def _non_empty(block: object) -> bool:
    # The API refuses empty text blocks.
    return not (isinstance(block, Text) and not block.text)


def _user_blocks(content: Sequence[UserBlock | AssistantBlock], label: str) -> list[Any]:
    results: list[Any] = []
    others: list[Any] = []
    for block in content:
        if isinstance(block, ToolResult):
            results.append(_tool_result(block, label))
        elif isinstance(block, (Text, Image, Document)):
            if _non_empty(block):
                others.append(_content_block(block, label))
        else:
            raise ProviderError(label, f"a user message cannot hold a {type(block).__name__}")
    # The API wants a message's tool_result blocks before anything else in it.
    return results + others


def _assistant_block(block: UserBlock | AssistantBlock, label: str) -> ContentBlockParam:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUse):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    raise ProviderError(label, f"an assistant message cannot hold a {type(block).__name__}")


def _tool_result(result: ToolResult, label: str) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.call_id}
    content = [_content_block(b, label) for b in result.content if _non_empty(b)]
    if content:
        block["content"] = content
    if result.is_error:
        block["is_error"] = True
    return block


def _content_block(block: Text | Image | Document, label: str) -> dict[str, Any]:
    if isinstance(block, Text):
        return {"type": "text", "text": block.text}
    kind = "image" if isinstance(block, Image) else "document"
    if block.data is not None:
        source: dict[str, Any] = {
            "type": "base64",
            "media_type": block.media_type,
            "data": base64.b64encode(block.data).decode("ascii"),
        }
    elif block.url:
        source = {"type": "url", "url": block.url}
    else:
        raise ProviderError(label, f"an {kind} block has neither bytes nor a URL")
    return {"type": kind, "source": source}
