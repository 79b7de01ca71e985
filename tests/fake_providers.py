"""A scripted local fake of the Anthropic Messages and OpenAI Chat Completions HTTP APIs.

One HTTP/1.1 server on a free loopback port serves both, so the real ``anthropic`` and
``openai`` SDKs (and the runner built on them) talk to it exactly as to the real thing:

* ``POST /v1/messages``: Anthropic; streamed (``"stream": true``) as the real SSE event
  sequence ``message_start``, ``ping``, ``content_block_start`` / ``content_block_delta``
  (``text_delta``, ``input_json_delta``) / ``content_block_stop``, ``message_delta``,
  ``message_stop``; else one JSON message.
* ``POST /v1/chat/completions`` (any path ending so, e.g. a Gemini-style
  ``/v1beta/openai/chat/completions``): OpenAI; streamed as ``data:`` chunks (text,
  ``tool_calls`` fragments by index, the finish reason, a final usage chunk when
  ``stream_options.include_usage`` is set, ``[DONE]``); else one JSON completion.

Each API has a script: a queue of replies, taken one per request. A reply is a
:class:`Reply` (text, tool calls, stop reason, usage), a :class:`Failure` (an HTTP error
status and body; or an error event inside a started stream; or a stream that breaks
off), or a callable of the :class:`RecordedRequest` returning one of those (or an
awaitable of one: a reply that waits, for cancel tests; :class:`Gate` holds replies
until the test opens it). Responders run on the fake's loop and must not block it. When the queue is
empty the fallback set by ``respond_with`` answers; without one the request gets a 400
saying nothing was scripted (with ``x-should-retry: false``, so the SDKs fail at once).
Every request is recorded, so tests can assert what the model was sent and how often::

    async with FakeProviders() as fake:
        fake.anthropic.script(reply_text("hi"), reply_tool("bash", {"command": "ls"}))
        fake.openai.script(failure(429), reply_text("after the rate limit"))
        client = anthropic.AsyncAnthropic(api_key="k", base_url=fake.anthropic_base_url)
        ...
        assert len(fake.anthropic.requests) == 2           # the JSON bodies
        assert fake.anthropic.received[0].headers["authorization"] == "Bearer k"
        await fake.openai.wait_for_requests(2)             # no sleeping

A responder sees the request as the model got it; ``req.steps_done`` (assistant turns
so far) and ``req.tool_results()`` (the results answering the last turn, either wire
format) let it play a model through a run::

    def model(req: RecordedRequest) -> Reply:
        if req.steps_done == 0:
            return reply_tool("bash", {"command": "ls"})
        return reply_tool("set_output", {"output": {"listing": req.tool_results()[0].text}})

    fake.anthropic.respond_with(model)

``fake.base_url`` is ``http://127.0.0.1:PORT``; ``fake.anthropic_base_url`` is what
``ANTHROPIC_BASE_URL`` takes (the same), ``fake.openai_base_url`` what
``OPENAI_BASE_URL`` takes (``…/v1``).

Errors carry ``retry-after-ms: 1`` by default: both SDKs honour it (``retry-after-ms``
before ``retry-after``, any positive value), so tests of the retry path do not wait for
the SDKs' real backoff. (A stream that fails after it started is tried again by the
runner's adapters themselves: give ``SdkModelClients`` ``retry_delay_s=0`` in tests.)

For a runner in another process: ``FakeProviders.in_thread()`` runs the server on a
loop of its own in a background thread (``script``/``respond_with``/``requests`` are
thread-safe; responders then run on that thread), and ``python tests/fake_providers.py
--port N --script file.json`` runs it standalone (the file: ``{"anthropic": [item, ...],
"openai": [...]}``, an item as :func:`item_from_json` reads it). A running fake is also
scripted over HTTP: ``POST /_fake/{anthropic|openai}/script`` with a JSON list of items,
``GET /_fake/{api}/requests`` (the bodies so far), ``POST /_fake/{api}/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeAlias

__all__ = [
    "ApiFake",
    "Failure",
    "FakeProviders",
    "Gate",
    "RecordedRequest",
    "Reply",
    "ToolCall",
    "ToolResultSeen",
    "Usage",
    "failure",
    "item_from_json",
    "reply_text",
    "reply_tool",
    "reply_tools",
    "tool_call",
]

Api: TypeAlias = Literal["anthropic", "openai"]


# -- what a script holds -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens the reply reports. ``input_tokens`` excludes the cached ones (as in
    ``ModelUsage``); the OpenAI side reports ``prompt_tokens = input + cache_read``."""

    input_tokens: int = 10
    output_tokens: int = 5
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    """``None``: one is made up (``toolu_fake_N`` / ``call_fake_N``)."""
    raw_arguments: str | None = None
    """Sent instead of ``input`` as JSON: to script arguments that are not valid JSON."""

    def arguments(self) -> str:
        return self.raw_arguments if self.raw_arguments is not None else json.dumps(self.input)


@dataclass(frozen=True, slots=True)
class Reply:
    """One model response."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    stop_reason: str | None = None
    """Neutral (``end_turn``, ``tool_use``, ``max_tokens``) or the wire's own value;
    ``None``: ``tool_use`` when there are tool calls, else ``end_turn``."""
    usage: Usage = field(default_factory=Usage)
    chunks: tuple[str, ...] | None = None
    """How the text is streamed; ``None``: split after each space."""
    raw_stream: tuple[Mapping[str, Any], ...] | None = None
    """Stream exactly these events instead (Anthropic: each sent as the event its
    ``type`` names; OpenAI: ``data:`` chunks, then ``[DONE]``): for wire shapes other
    servers send, such as tool calls without an ``index``."""

    def text_chunks(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return re.findall(r"\s*\S+\s*|\s+", self.text)

    def neutral_stop(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        return "tool_use" if self.tool_calls else "end_turn"


@dataclass(frozen=True, slots=True)
class Failure:
    """An error: an HTTP status with the API's error body (``mode="status"``), an
    error event after the stream started (``"stream_error"``), or a stream that breaks
    off after its first events (``"drop"``)."""

    status: int = 500
    message: str = "scripted failure"
    error_type: str | None = None
    """The body's ``error.type``; ``None``: the API's usual type for the status."""
    retry_after_ms: float | None = 1
    """Sent as ``retry-after-ms`` (``None``: no such header, the SDK's own backoff)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    mode: Literal["status", "stream_error", "drop"] = "status"
    partial_text: str = ""
    """Text streamed before an error event or a cut (``stream_error``, ``drop``)."""


Scripted: TypeAlias = "Reply | Failure"
Responder: TypeAlias = Callable[["RecordedRequest"], "Reply | Failure | Awaitable[Reply | Failure]"]
ScriptItem: TypeAlias = "Reply | Failure | Responder"


def reply_text(
    text: str,
    *,
    usage: Usage | None = None,
    stop_reason: str | None = None,
    chunks: Sequence[str] | None = None,
) -> Reply:
    return Reply(
        text=text,
        usage=usage or Usage(),
        stop_reason=stop_reason,
        chunks=tuple(chunks) if chunks is not None else None,
    )


def tool_call(
    name: str, input: Mapping[str, Any] | None = None, *, id: str | None = None
) -> ToolCall:
    return ToolCall(name=name, input=dict(input or {}), id=id)


def reply_tool(
    name: str,
    input: Mapping[str, Any] | None = None,
    *,
    id: str | None = None,
    text: str = "",
    usage: Usage | None = None,
) -> Reply:
    """A response calling one tool (after ``text``, if any)."""
    return Reply(text=text, tool_calls=(tool_call(name, input, id=id),), usage=usage or Usage())


def reply_tools(*calls: ToolCall, text: str = "", usage: Usage | None = None) -> Reply:
    """A response calling several tools."""
    return Reply(text=text, tool_calls=calls, usage=usage or Usage())


def failure(
    status: int = 500,
    message: str | None = None,
    *,
    retry_after_ms: float | None = 1,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    mode: Literal["status", "stream_error", "drop"] = "status",
    partial_text: str = "",
) -> Failure:
    return Failure(
        partial_text=partial_text,
        status=status,
        message=message or f"scripted HTTP {status}",
        error_type=error_type,
        retry_after_ms=retry_after_ms,
        headers=dict(headers or {}),
        mode=mode,
    )


def item_from_json(item: Mapping[str, Any]) -> Reply | Failure:
    """A script item from JSON: ``{"text": ..., "tool_calls": [{"name", "input", "id"}],
    "stop_reason": ..., "usage": {...}}`` or ``{"error": {"status", "message",
    "retry_after_ms", "error_type", "mode", "partial_text"}}``."""
    if "error" in item:
        err = dict(item["error"])
        return failure(
            int(err.get("status", 500)),
            err.get("message"),
            retry_after_ms=err.get("retry_after_ms", 1),
            error_type=err.get("error_type"),
            mode=err.get("mode", "status"),
            partial_text=err.get("partial_text", ""),
        )
    calls = tuple(
        ToolCall(
            name=c["name"],
            input=dict(c.get("input") or {}),
            id=c.get("id"),
            raw_arguments=c.get("raw_arguments"),
        )
        for c in item.get("tool_calls", ())
    )
    return Reply(
        text=item.get("text", ""),
        tool_calls=calls,
        stop_reason=item.get("stop_reason"),
        usage=Usage(**item.get("usage", {})),
    )


class Gate:
    """Holds replies until the test opens it, from any thread: for a model call that
    must still be in flight when the test acts (cancel, kill the runner)::

        gate = Gate()
        fake.anthropic.script(reply_tool("bash", {"command": "ls"}), gate.hold(reply_text("late")))
        ...
        assert gate.reached.wait(60)   # the second call arrived and is held
        ...                            # kill, cancel
        gate.open()
    """

    def __init__(self) -> None:
        self.reached = threading.Event()
        """Set when a held reply's request arrives."""
        self._lock = threading.Lock()
        self._opened = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def open(self) -> None:
        with self._lock:
            self._opened = True
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._opened:
                future.set_result(None)
            else:
                self._waiters.append((loop, future))
        self.reached.set()
        await future

    def hold(self, reply: Reply | Failure) -> Responder:
        """A script item that answers ``reply`` once the gate is open."""

        async def held(_request: RecordedRequest) -> Reply | Failure:
            await self.wait()
            return reply

        return held


# -- one API's script and record ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    api: Api
    path: str
    headers: Mapping[str, str]
    """Lower-cased names."""
    body: dict[str, Any]

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def steps_done(self) -> int:
        """Assistant turns in the conversation: 0 on a run's first call."""
        return sum(1 for m in self.messages if m.get("role") == "assistant")

    def tool_results(self) -> list[ToolResultSeen]:
        """The tool results the request answers the last assistant turn with, in either
        wire format (Anthropic ``tool_result`` blocks, OpenAI ``tool`` messages)."""
        messages = self.messages
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
        seen: list[ToolResultSeen] = []
        for message in messages[last + 1 :]:
            if self.api == "openai":
                if message.get("role") == "tool":
                    text = str(message.get("content") or "")
                    seen.append(
                        ToolResultSeen(
                            str(message.get("tool_call_id")), text, text.startswith("Error")
                        )
                    )
                continue
            content = message.get("content")
            for block in content if isinstance(content, list) else ():
                if block.get("type") != "tool_result":
                    continue
                inner = block.get("content") or []
                text = (
                    inner
                    if isinstance(inner, str)
                    else "\n".join(b.get("text", "") for b in inner if b.get("type") == "text")
                )
                seen.append(
                    ToolResultSeen(str(block.get("tool_use_id")), text, bool(block.get("is_error")))
                )
        return seen


@dataclass(frozen=True, slots=True)
class ToolResultSeen:
    """A tool result as the model was sent it."""

    call_id: str
    text: str
    is_error: bool


class ApiFake:
    """The script and the record of one API (``fake.anthropic``, ``fake.openai``).
    Thread-safe: a test may script it while the server runs on another thread."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: deque[ScriptItem] = deque()
        self._fallback: Responder | None = None
        self._received: list[RecordedRequest] = []
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._ids = itertools.count(1)

    def script(self, *items: ScriptItem) -> ApiFake:
        """Queue replies, one per request, in order."""
        with self._lock:
            self._queue.extend(items)
        return self

    def respond_with(self, responder: Responder | Reply | Failure | None) -> ApiFake:
        """Answer every request the queue has nothing for (``None``: refuse them)."""
        if isinstance(responder, (Reply, Failure)):
            fixed = responder
            responder = lambda _request: fixed  # noqa: E731
        with self._lock:
            self._fallback = responder
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self._fallback = None
            self._received.clear()

    @property
    def received(self) -> list[RecordedRequest]:
        """Every request so far (path, headers, body), in order."""
        with self._lock:
            return list(self._received)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every request so far, in order."""
        with self._lock:
            return [r.body for r in self._received]

    @property
    def pending(self) -> int:
        """Scripted replies not yet taken."""
        with self._lock:
            return len(self._queue)

    async def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Until ``count`` requests have arrived (from any thread's loop)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if len(self._received) >= count:
                return list(self._received)
            self._waiters.append((count, loop, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AssertionError(
                f"fake {self.api}: {len(self.received)} request(s) arrived, {count} expected"
            ) from None
        return self.received

    def wait_for_requests_blocking(
        self, count: int, timeout: float = 10.0
    ) -> list[RecordedRequest]:
        """The same for a test thread without an event loop."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._received) >= count, timeout):
                raise AssertionError(
                    f"fake {self.api}: {len(self._received)} request(s) arrived, {count} expected"
                )
            return list(self._received)

    def next_id(self) -> int:
        return next(self._ids)

    def _record(self, request: RecordedRequest) -> ScriptItem | None:
        with self._lock:
            self._received.append(request)
            count = len(self._received)
            item: ScriptItem | None = self._queue.popleft() if self._queue else self._fallback
            ready = [w for w in self._waiters if w[0] <= count]
            self._waiters = [w for w in self._waiters if w[0] > count]
            self._changed.notify_all()
        for _count, loop, future in ready:
            loop.call_soon_threadsafe(_resolve, future)
        return item


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# -- the wire formats --------------------------------------------------------------------

_ANTHROPIC_STOP = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens"}
_OPENAI_FINISH = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def _json_pieces(text: str) -> list[str]:
    """Arguments in fragments, as the APIs stream them."""
    if len(text) < 4:
        return [text]
    third = len(text) // 3
    return [text[:third], text[third : 2 * third], text[2 * third :]]


def _error_body(api: Api, f: Failure) -> dict[str, Any]:
    if api == "anthropic":
        kind = f.error_type or _ANTHROPIC_ERROR_TYPES.get(
            f.status, "api_error" if f.status >= 500 else "invalid_request_error"
        )
        return {"type": "error", "error": {"type": kind, "message": f.message}}
    kind = f.error_type or _OPENAI_ERROR_TYPES.get(
        f.status, "server_error" if f.status >= 500 else "invalid_request_error"
    )
    return {"error": {"message": f.message, "type": kind, "param": None, "code": None}}


class _Ids:
    def __init__(self, fake: ApiFake) -> None:
        self.n = fake.next_id()
        self._fake = fake

    def tool(self, call: ToolCall, i: int) -> str:
        if call.id:
            return call.id
        prefix = "toolu_fake" if self._fake.api == "anthropic" else "call_fake"
        return f"{prefix}_{self.n}_{i}"


def _anthropic_events(reply: Reply, model: str, ids: _Ids) -> Iterator[dict[str, Any]]:
    u = reply.usage
    yield {
        "type": "message_start",
        "message": {
            "id": f"msg_fake_{ids.n}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": u.input_tokens,
                "output_tokens": 1,
                "cache_read_input_tokens": u.cache_read_tokens,
                "cache_creation_input_tokens": u.cache_write_tokens,
            },
        },
    }
    yield {"type": "ping"}
    index = 0
    if reply.text:
        yield {
            "type": "content_block_start",
            "index": index,
            "content_block": {"type": "text", "text": ""},
        }
        for piece in reply.text_chunks():
            yield {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "text_delta", "text": piece},
            }
        yield {"type": "content_block_stop", "index": index}
        index += 1
    for i, call in enumerate(reply.tool_calls):
        yield {
            "type": "content_block_start",
            "index": index,
            "content_block": {
                "type": "tool_use",
                "id": ids.tool(call, i),
                "name": call.name,
                "input": {},
            },
        }
        for piece in _json_pieces(call.arguments()):
            yield {
                "type": "content_block_delta",
                "index": index,
                "delta": {"type": "input_json_delta", "partial_json": piece},
            }
        yield {"type": "content_block_stop", "index": index}
        index += 1
    stop = reply.neutral_stop()
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": _ANTHROPIC_STOP.get(stop, stop), "stop_sequence": None},
        "usage": {"output_tokens": u.output_tokens},
    }
    yield {"type": "message_stop"}


def _anthropic_message(reply: Reply, model: str, ids: _Ids) -> dict[str, Any]:
    u = reply.usage
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for i, call in enumerate(reply.tool_calls):
        content.append(
            {
                "type": "tool_use",
                "id": ids.tool(call, i),
                "name": call.name,
                "input": dict(call.input),
            }
        )
    stop = reply.neutral_stop()
    return {
        "id": f"msg_fake_{ids.n}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": _ANTHROPIC_STOP.get(stop, stop),
        "stop_sequence": None,
        "usage": {
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "cache_read_input_tokens": u.cache_read_tokens,
            "cache_creation_input_tokens": u.cache_write_tokens,
        },
    }


def _openai_usage(u: Usage) -> dict[str, Any]:
    prompt = u.input_tokens + u.cache_read_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": u.output_tokens,
        "total_tokens": prompt + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
    }


def _openai_chunks(
    reply: Reply, model: str, ids: _Ids, include_usage: bool
) -> Iterator[dict[str, Any]]:
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake-{ids.n}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    yield chunk({"role": "assistant", "content": ""})
    for piece in reply.text_chunks():
        yield chunk({"content": piece})
    for i, call in enumerate(reply.tool_calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": i,
                        "id": ids.tool(call, i),
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        for piece in _json_pieces(call.arguments()):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    stop = reply.neutral_stop()
    yield chunk({}, _OPENAI_FINISH.get(stop, stop))
    if include_usage:
        yield {
            "id": f"chatcmpl-fake-{ids.n}",
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": _openai_usage(reply.usage),
        }


def _openai_completion(reply: Reply, model: str, ids: _Ids) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": ids.tool(call, i),
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments()},
            }
            for i, call in enumerate(reply.tool_calls)
        ]
    stop = reply.neutral_stop()
    return {
        "id": f"chatcmpl-fake-{ids.n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": _OPENAI_FINISH.get(stop, stop)}
        ],
        "usage": _openai_usage(reply.usage),
    }


# -- the HTTP server ---------------------------------------------------------------------


class _Response:
    """Writes one HTTP/1.1 response: a whole JSON body, or chunked server-sent events."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def json(
        self, status: int, body: object, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        head = [f"HTTP/1.1 {status} {_reason(status)}", "content-type: application/json"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        head.append(f"content-length: {len(data)}")
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await self._writer.drain()

    async def start_events(self) -> None:
        head = [
            "HTTP/1.1 200 OK",
            "content-type: text/event-stream",
            "cache-control: no-cache",
            "transfer-encoding: chunked",
        ]
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await self._writer.drain()

    async def event(self, data: str, name: str | None = None) -> None:
        text = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
        raw = text.encode()
        self._writer.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        await self._writer.drain()

    async def end_events(self) -> None:
        self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()


def _reason(status: int) -> str:
    return {
        200: "OK",
        400: "Bad Request",
        401: "Unauthorized",
        404: "Not Found",
        429: "Too Many Requests",
        500: "Internal Server Error",
        529: "Overloaded",
    }.get(status, "Status")


class _Dropped(Exception):
    """The scripted reply breaks the connection off."""


class FakeProviders:
    """Both fake APIs on one loopback port (see the module doc)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.anthropic = ApiFake("anthropic")
        self.openai = ApiFake("openai")
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # -- addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake providers are not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def anthropic_base_url(self) -> str:
        """For ``ANTHROPIC_BASE_URL`` / ``AsyncAnthropic(base_url=...)``."""
        return self.base_url

    @property
    def openai_base_url(self) -> str:
        """For ``OPENAI_BASE_URL`` / ``AsyncOpenAI(base_url=...)``."""
        return f"{self.base_url}/v1"

    def api(self, name: str) -> ApiFake:
        if name == "anthropic":
            return self.anthropic
        if name == "openai":
            return self.openai
        raise KeyError(f"no fake API {name!r} (anthropic, openai)")

    # -- lifecycle in the caller's loop

    async def start(self) -> FakeProviders:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeProviders:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- lifecycle on a thread of its own

    @classmethod
    @contextlib.contextmanager
    def in_thread(cls, host: str = "127.0.0.1", port: int = 0) -> Iterator[FakeProviders]:
        """The fake on a background thread with its own loop, for the duration."""
        fake = cls(host, port)
        fake.start_thread()
        try:
            yield fake
        finally:
            fake.stop_thread()

    def start_thread(self) -> FakeProviders:
        started = threading.Event()
        failed: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._thread_loop = loop
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failed.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.stop())
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-providers", daemon=True)
        self._thread.start()
        started.wait()
        if failed:
            raise failed[0]
        return self

    def stop_thread(self) -> None:
        if self._thread_loop is not None and self._thread is not None:
            self._thread_loop.call_soon_threadsafe(self._thread_loop.stop)
            self._thread.join(timeout=10)
            self._thread = None
            self._thread_loop = None

    # -- serving

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._connection(reader, writer)
        except asyncio.CancelledError:
            # stop() cancels the connections still open; the handler task is ours and
            # ends here (re-raising would make asyncio log it as an unhandled error).
            pass
        finally:
            self._connections.discard(task)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, _Dropped):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request on a kept-alive connection; ``False``: the client is gone."""
        line = await reader.readline()
        if not line:
            return False
        method, target, _version = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            raw = await reader.readline()
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body_bytes = await reader.readexactly(length) if length else b""
        path = target.split("?", 1)[0]
        response = _Response(writer)
        await self._route(method, path, headers, body_bytes, response)
        return headers.get("connection", "").lower() != "close"

    async def _route(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body_bytes: bytes,
        response: _Response,
    ) -> None:
        if path.startswith("/_fake/"):
            await self._control(method, path, body_bytes, response)
            return
        if method == "POST" and path.endswith("/messages"):
            api = self.anthropic
        elif method == "POST" and path.endswith("/chat/completions"):
            api = self.openai
        else:
            await response.json(404, {"error": {"message": f"no route {method} {path}"}})
            return
        try:
            body = json.loads(body_bytes or b"{}")
        except ValueError:
            await response.json(400, _error_body(api.api, failure(400, "body is not JSON")))
            return
        request = RecordedRequest(api=api.api, path=path, headers=headers, body=body)
        item = api._record(request)
        if item is None:
            outcome: Reply | Failure = Failure(
                status=400,
                message=(
                    f"fake {api.api}: nothing scripted for request "
                    f"#{len(api.received)} ({api.pending} left)"
                ),
                retry_after_ms=None,
                headers={"x-should-retry": "false"},
            )
        elif isinstance(item, (Reply, Failure)):
            outcome = item
        else:
            produced = item(request)
            outcome = await produced if isinstance(produced, Awaitable) else produced
        await self._answer(api, request, outcome, response)

    async def _answer(
        self, api: ApiFake, request: RecordedRequest, outcome: Reply | Failure, response: _Response
    ) -> None:
        model = str(request.body.get("model", "fake-model"))
        if isinstance(outcome, Failure) and outcome.mode == "status":
            headers = dict(outcome.headers)
            if outcome.retry_after_ms is not None:
                headers.setdefault("retry-after-ms", f"{outcome.retry_after_ms:g}")
            await response.json(outcome.status, _error_body(api.api, outcome), headers)
            return
        ids = _Ids(api)
        if isinstance(outcome, Failure):
            # A failure after the stream started: a reply's first events (with
            # ``partial_text`` streamed, if any), then the error event or the cut.
            await response.start_events()
            partial = Reply(text=outcome.partial_text)
            if api.api == "anthropic":
                for event in _anthropic_events(partial, model, ids):
                    if event["type"] in ("content_block_stop", "message_delta", "message_stop"):
                        break
                    await response.event(json.dumps(event), event["type"])
                if outcome.mode == "stream_error":
                    await response.event(json.dumps(_error_body("anthropic", outcome)), "error")
            else:
                for chunk in list(_openai_chunks(partial, model, ids, False))[:-1]:
                    await response.event(json.dumps(chunk))
                if outcome.mode == "stream_error":
                    await response.event(json.dumps(_error_body("openai", outcome)))
            if outcome.mode == "drop":
                raise _Dropped
            await response.end_events()
            return
        if not request.stream:
            if api.api == "anthropic":
                await response.json(200, _anthropic_message(outcome, model, ids))
            else:
                await response.json(200, _openai_completion(outcome, model, ids))
            return
        await response.start_events()
        if outcome.raw_stream is not None:
            for raw in outcome.raw_stream:
                name = str(raw.get("type")) if api.api == "anthropic" else None
                await response.event(json.dumps(raw), name)
            if api.api == "openai":
                await response.event("[DONE]")
        elif api.api == "anthropic":
            for event in _anthropic_events(outcome, model, ids):
                await response.event(json.dumps(event), event["type"])
        else:
            options = request.body.get("stream_options") or {}
            include_usage = bool(options.get("include_usage"))
            for chunk in _openai_chunks(outcome, model, ids, include_usage):
                await response.event(json.dumps(chunk))
            await response.event("[DONE]")
        await response.end_events()

    async def _control(self, method: str, path: str, body: bytes, response: _Response) -> None:
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[1] not in ("anthropic", "openai"):
            await response.json(404, {"error": f"no control route {path}"})
            return
        api, action = self.api(parts[1]), parts[2]
        if method == "POST" and action == "script":
            items = json.loads(body or b"[]")
            api.script(*(item_from_json(i) for i in items))
            await response.json(200, {"pending": api.pending})
        elif method == "GET" and action == "requests":
            await response.json(200, api.requests)
        elif method == "POST" and action == "reset":
            api.reset()
            await response.json(200, {"pending": 0})
        else:
            await response.json(404, {"error": f"no control route {method} {path}"})


# -- standalone ---------------------------------------------------------------------------


async def _main(port: int, script: Path | None) -> None:
    fake = FakeProviders(port=port)
    if script is not None:
        data = json.loads(script.read_text())
        for name in ("anthropic", "openai"):
            fake.api(name).script(*(item_from_json(i) for i in data.get(name, ())))
    async with fake:
        print(f"fake providers listening on {fake.base_url}", flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scripted fake Anthropic + OpenAI APIs.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", type=Path, default=None)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.port, args.script))


if __name__ == "__main__":
    main(sys.argv[1:])
