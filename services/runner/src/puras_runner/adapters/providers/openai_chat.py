"""OpenAI Chat Completions through the official SDK (``AsyncOpenAI``), streamed.

The same wire protocol serves OpenAI, Gemini's OpenAI-compatible endpoint and local
servers (vLLM, Ollama, llama.cpp), so the translation keeps to what all of them take:
text-only user content as a plain string, ``tool`` messages with text content, images as
``image_url`` parts of a user message. Chat Completions has no PDF block; the loop
refuses a PDF for a route without ``pdf`` before any call, and one that gets here anyway
is a :class:`ProviderError`, not a request the upstream would reject less clearly.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Final

import httpx2
import openai

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
    ResultBlock,
    Text,
    ToolResult,
    ToolUse,
    UserBlock,
)
from puras_runner.domain.agent.errors import ProviderError

__all__ = ["OpenAIChatClient", "to_messages"]

_FINISH_REASONS: Final = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
}
_IMAGES_FOLLOW: Final = "[the image(s) of this result follow in the next user message]"


class OpenAIChatClient:
    """One ``AsyncOpenAI`` (one endpoint and key) serving every route that uses it."""

    def __init__(
        self,
        sdk: openai.AsyncOpenAI,
        *,
        label: str,
        key_env: str | None,
        endpoint: str = "",
        max_completion_tokens: bool = True,
        stream_retries: int = 4,
        retry_delay_s: float = 0.5,
    ) -> None:
        """``stream_retries`` / ``retry_delay_s``: tries of a call whose stream failed
        after it started, and the first backoff step (see :mod:`.stream_retry`)."""
        self._sdk = sdk
        self._stream_retries = stream_retries
        self._retry_delay_s = retry_delay_s
        self._label = label
        self._key_env = key_env
        self._endpoint = endpoint
        # OpenAI's own endpoint wants ``max_completion_tokens`` (its reasoning models
        # refuse ``max_tokens``); compatible servers know ``max_tokens`` for sure.
        self._max_key = "max_completion_tokens" if max_completion_tokens else "max_tokens"

    async def respond(self, request: ModelRequest, on_text: OnText) -> ModelReply:
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages += to_messages(request.messages, self._label)
        params: dict[str, Any] = {
            "model": request.route.upstream_model,
            "messages": messages,
            self._max_key: request.route.max_output_tokens,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.input_schema,
                    },
                }
                for t in request.tools
            ]
        return await retry_interrupted(
            lambda relay: self._once(params, relay),
            on_text,
            retries=self._stream_retries,
            delay_s=self._retry_delay_s,
        )

    async def _once(self, params: dict[str, Any], on_text: OnText) -> ModelReply:
        opened = False
        try:
            stream = await self._sdk.chat.completions.create(**params, stream=True)
            opened = True
            async with stream:
                return await _fold(stream, on_text)
        except openai.APIStatusError as exc:
            raise status_error(
                self._label,
                exc.status_code,
                exc.body,
                exc.message,
                key_env=self._key_env,
                endpoint=self._endpoint,
                secret=self._sdk.api_key or None,
            ) from None
        except openai.APIConnectionError as exc:
            # Once the stream is open, this is the connection breaking off mid-stream.
            error = transport_error(self._label, exc, endpoint=self._endpoint)
            if opened:
                raise StreamInterrupted(error) from None
            raise error from None
        except openai.APIError as exc:
            # An error chunk inside a started stream (no HTTP status to report).
            error = status_error(
                self._label, 200, exc.body, exc.message, key_env=None, endpoint=self._endpoint
            )
            if is_transient_body(exc.body):
                raise StreamInterrupted(error) from None
            raise error from None
        except (httpx2.TransportError, _Truncated):
            where = f" [{self._endpoint}]" if self._endpoint else ""
            raise StreamInterrupted(
                ProviderError(self._label, f"the response stream broke off{where}")
            ) from None


class _Truncated(Exception):
    """The stream ended without a ``finish_reason``."""


class _Call:
    __slots__ = ("arguments", "id", "name")

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.name = ""
        self.arguments = ""


async def _fold(stream: Any, on_text: OnText) -> ModelReply:
    """Accumulate the streamed chunks: text deltas, tool-call fragments by index, the
    finish reason and the usage of the final (choice-less) chunk."""
    text: list[str] = []
    calls: dict[int, _Call] = {}
    finish: str | None = None
    usage = ModelUsage()
    async for chunk in stream:
        if chunk.usage is not None:
            usage = _usage(chunk.usage)
        for choice in chunk.choices or ():
            delta = choice.delta
            if delta is not None:
                if delta.content:
                    text.append(delta.content)
                    on_text(delta.content)
                for fragment in delta.tool_calls or ():
                    _add_fragment(calls, fragment)
            if choice.finish_reason:
                finish = choice.finish_reason
    if finish is None:
        raise _Truncated
    content: list[AssistantBlock] = []
    if "".join(text):
        content.append(Text("".join(text)))
    for index in sorted(calls):
        call = calls[index]
        content.append(ToolUse(id=call.id, name=call.name, input=parse_arguments(call.arguments)))
    stop = _FINISH_REASONS.get(finish, finish)
    if stop == "end_turn" and calls:
        # Some compatible servers (Ollama among them) finish a tool-calling response
        # with ``stop``; the calls are there, so the model did ask for them.
        stop = "tool_use"
    return ModelReply(content=tuple(content), stop_reason=stop, usage=usage)


def _add_fragment(calls: dict[int, _Call], fragment: Any) -> None:
    index = fragment.index
    if index is None:
        # Servers that send each call whole may leave out the index: a new id starts a
        # new call, a fragment without one continues the last.
        index = len(calls) if fragment.id or not calls else max(calls)
    call = calls.get(index)
    if call is None or (fragment.id and call.id and fragment.id != call.id and call.name):
        # A new id at an index already taken is a second call from a server that
        # numbers every call 0.
        if call is not None:
            index = max(calls) + 1
        call = calls[index] = _Call(fragment.id or f"call_{index}")
    elif fragment.id and not call.id:
        call.id = fragment.id
    function = fragment.function
    if function is not None:
        if function.name:
            call.name += function.name
        if function.arguments:
            call.arguments += function.arguments


def _usage(usage: Any) -> ModelUsage:
    prompt = usage.prompt_tokens or 0
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
    return ModelUsage(
        input_tokens=max(prompt - cached, 0),
        output_tokens=usage.completion_tokens or 0,
        cache_read_tokens=cached,
    )


# -- the neutral conversation as Chat Completions messages ---------------------------


def to_messages(messages: Sequence[Message], label: str = "openai") -> list[dict[str, Any]]:
    """The conversation after the system message."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "assistant":
            out.append(_assistant(message.content, label))
        else:
            out += _user(message.content, label)
    return out


def _assistant(content: Sequence[UserBlock | AssistantBlock], label: str) -> dict[str, Any]:
    text = "".join(b.text for b in content if isinstance(b, Text))
    calls = [
        {
            "id": b.id,
            "type": "function",
            # Re-encoded from the parsed input: compatible servers parse the arguments
            # of earlier turns into their chat template and refuse broken JSON there.
            "function": {"name": b.name, "arguments": json.dumps(b.input)},
        }
        for b in content
        if isinstance(b, ToolUse)
    ]
    for block in content:
        if not isinstance(block, (Text, ToolUse)):
            raise ProviderError(label, f"an assistant message cannot hold a {type(block).__name__}")
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _user(content: Sequence[UserBlock | AssistantBlock], label: str) -> list[dict[str, Any]]:
    """One ``tool`` message per result (they must follow the assistant's calls
    directly), then one ``user`` message with the rest and the results' images."""
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, ToolResult):
            text, images = _split_result(block.content, label)
            if images:
                text = f"{text}\n{_IMAGES_FOLLOW}" if text else _IMAGES_FOLLOW
                parts += images
            if block.is_error:
                text = f"Error: {text}" if text else "Error"
            out.append({"role": "tool", "tool_call_id": block.call_id, "content": text})
        elif isinstance(block, Text):
            if block.text:
                parts.append({"type": "text", "text": block.text})
        elif isinstance(block, Image):
            parts.append(_image_part(block, label))
        elif isinstance(block, Document):
            raise _no_documents(label)
        else:
            raise ProviderError(label, f"a user message cannot hold a {type(block).__name__}")
    if parts:
        if all(p["type"] == "text" for p in parts):
            # Plain string content: every compatible server takes it, not all take parts.
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _split_result(content: Sequence[ResultBlock], label: str) -> tuple[str, list[dict[str, Any]]]:
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for block in content:
        if isinstance(block, Text):
            texts.append(block.text)
        elif isinstance(block, Image):
            images.append(_image_part(block, label))
        else:
            raise _no_documents(label)
    return "\n".join(texts), images


def _image_part(image: Image, label: str) -> dict[str, Any]:
    if image.data is not None:
        url = f"data:{image.media_type};base64,{base64.b64encode(image.data).decode('ascii')}"
    elif image.url:
        url = image.url
    else:
        raise ProviderError(label, "an image block has neither bytes nor a URL")
    return {"type": "image_url", "image_url": {"url": url}}


def _no_documents(label: str) -> ProviderError:
    return ProviderError(
        label,
        "this model takes no PDF documents through the Chat Completions API; "
        "use a model with PDF support (a claude/* slug) for PDF attachments",
    )
