"""The Anthropic Messages adapter: the real ``anthropic`` SDK against the local fake."""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator, Mapping

import anthropic
import pytest
from fake_providers import (
    FakeProviders,
    RecordedRequest,
    Reply,
    ToolCall,
    Usage,
    failure,
    reply_text,
    reply_tool,
    reply_tools,
    tool_call,
)

from puras_common.events.types import ModelUsage
from puras_runner.adapters.providers import (
    RAW_ARGUMENTS_KEY,
    ProviderEndpoint,
    SdkModelClients,
)
from puras_runner.domain.agent.conversation import (
    Document,
    Image,
    Message,
    ModelRequest,
    ModelRoute,
    Text,
    ToolDef,
    ToolResult,
    ToolUse,
)
from puras_runner.domain.agent.errors import ProviderError

ROUTE = ModelRoute(
    slug="claude/sonnet-4-5",
    provider="anthropic",
    upstream_model="claude-sonnet-4-5",
    pdf=True,
    max_output_tokens=1234,
)
KEY = "sk-ant-test-key-1234"
BASH = ToolDef("bash", "Run a shell command.", {"type": "object", "properties": {}})
SET_OUTPUT = ToolDef("set_output", "Finish.", {"type": "object"})


def sent_key(headers: Mapping[str, str]) -> str | None:
    """The credential a request carried (``x-api-key``, or a bearer token: this SDK
    version sends both kinds of credential as ``Authorization: Bearer``)."""
    if "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


def request(*messages: Message, system: str = "You are a skill.") -> ModelRequest:
    msgs = messages or (Message("user", (Text("hello"),)),)
    return ModelRequest(route=ROUTE, system=system, tools=(BASH, SET_OUTPUT), messages=msgs)


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviders]:
    async with FakeProviders() as fake:
        yield fake


@pytest.fixture
async def clients(fake: FakeProviders) -> AsyncIterator[SdkModelClients]:
    env = {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.anthropic_base_url}
    clients = SdkModelClients(environ=env, max_retries=2, retry_delay_s=0)
    yield clients
    await clients.aclose()


async def test_text_is_streamed_piece_by_piece(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.script(reply_text("The answer is forty-two."))
    pieces: list[str] = []

    reply = await clients.client(ROUTE).respond(request(), pieces.append)

    assert reply.content == (Text("The answer is forty-two."),)
    assert len(pieces) > 1
    assert "".join(pieces) == reply.text
    assert reply.stop_reason == "end_turn"
    (sent,) = fake.anthropic.received
    assert sent.path == "/v1/messages"
    assert sent_key(sent.headers) == KEY
    assert sent.body["stream"] is True
    assert sent.body["model"] == "claude-sonnet-4-5"
    assert sent.body["max_tokens"] == 1234


async def test_tool_calls_come_back_with_ids_names_and_parsed_input(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.script(
        reply_tools(
            tool_call("bash", {"command": "ls -la", "timeout": 5}, id="toolu_01"),
            tool_call("set_output", {"output": {"n": [1, 2]}}, id="toolu_02"),
            text="Let me look.",
        )
    )
    pieces: list[str] = []

    reply = await clients.client(ROUTE).respond(request(), pieces.append)

    assert reply.content == (
        Text("Let me look."),
        ToolUse("toolu_01", "bash", {"command": "ls -la", "timeout": 5}),
        ToolUse("toolu_02", "set_output", {"output": {"n": [1, 2]}}),
    )
    assert reply.stop_reason == "tool_use"
    assert "".join(pieces) == "Let me look."


async def test_tool_arguments_that_are_not_json_are_kept_raw(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.script(
        reply_tools(ToolCall("bash", id="toolu_x", raw_arguments='{"command": "ls'))
    )

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.tool_uses == [ToolUse("toolu_x", "bash", {RAW_ARGUMENTS_KEY: '{"command": "ls'})]


async def test_usage_includes_cache_reads_and_writes(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    usage = Usage(
        input_tokens=120, output_tokens=33, cache_read_tokens=4000, cache_write_tokens=900
    )
    fake.anthropic.script(reply_tool("bash", {"command": "pwd"}, usage=usage))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.usage == ModelUsage(
        input_tokens=120, output_tokens=33, cache_read_tokens=4000, cache_write_tokens=900
    )


@pytest.mark.parametrize(
    ("wire", "neutral"),
    [
        ("end_turn", "end_turn"),
        ("stop_sequence", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("refusal", "refusal"),
    ],
)
async def test_stop_reasons(
    fake: FakeProviders, clients: SdkModelClients, wire: str, neutral: str
) -> None:
    fake.anthropic.script(reply_text("partial", stop_reason=wire))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.stop_reason == neutral


async def test_system_and_tools_carry_cache_breakpoints(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.script(reply_text("ok"))

    await clients.client(ROUTE).respond(request(system="Be brief."), lambda _t: None)

    body = fake.anthropic.requests[0]
    assert body["system"] == [
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["tools"] == [
        {"name": "bash", "description": "Run a shell command.", "input_schema": BASH.input_schema},
        {
            "name": "set_output",
            "description": "Finish.",
            "input_schema": {"type": "object"},
            "cache_control": {"type": "ephemeral"},
        },
    ]


async def test_conversation_is_translated_to_messages_blocks(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    png, pdf = b"\x89PNG fake", b"%PDF-1.7 fake"
    b64 = base64.b64encode
    conversation = (
        Message(
            "user",
            (
                Text("Describe these."),
                Text(""),
                Image("image/png", data=png),
                Image("image/jpeg", url="https://example.com/cat.jpg"),
                Document("application/pdf", data=pdf),
                Document("application/pdf", url="https://example.com/doc.pdf"),
            ),
        ),
        Message(
            "assistant",
            (Text("Reading it."), ToolUse("toolu_1", "file_read", {"paths": ["a.png"]})),
        ),
        Message(
            "user",
            (
                Text("also note this"),
                ToolResult("toolu_1", (Text("a.png:"), Image("image/png", data=png))),
                ToolResult("toolu_2", (Text("no such file"),), is_error=True),
                ToolResult("toolu_3", ()),
            ),
        ),
    )
    fake.anthropic.script(reply_text("ok"))

    await clients.client(ROUTE).respond(request(*conversation), lambda _t: None)

    png_source = {"type": "base64", "media_type": "image/png", "data": b64(png).decode()}
    assert fake.anthropic.requests[0]["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe these."},
                {"type": "image", "source": png_source},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": b64(pdf).decode(),
                    },
                },
                {
                    "type": "document",
                    "source": {"type": "url", "url": "https://example.com/doc.pdf"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Reading it."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "file_read",
                    "input": {"paths": ["a.png"]},
                },
            ],
        },
        {
            "role": "user",
            # tool_result blocks first, as the API wants; the last block of the
            # conversation carries the third cache breakpoint.
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [
                        {"type": "text", "text": "a.png:"},
                        {"type": "image", "source": png_source},
                    ],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "no such file"}],
                    "is_error": True,
                },
                {"type": "tool_result", "tool_use_id": "toolu_3"},
                {
                    "type": "text",
                    "text": "also note this",
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        },
    ]


async def test_a_rate_limit_is_retried_and_the_success_returned(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.script(failure(429, "slow down"), reply_text("made it"))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.text == "made it"
    assert len(fake.anthropic.requests) == 2
    assert fake.anthropic.requests[0] == fake.anthropic.requests[1]


async def test_overload_529_is_retried(fake: FakeProviders, clients: SdkModelClients) -> None:
    fake.anthropic.script(failure(529, "Overloaded"), failure(529), reply_text("ok"))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.text == "ok"
    assert len(fake.anthropic.requests) == 3


async def test_persistent_500_fails_naming_provider_and_status(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.respond_with(failure(500, "the backend fell over"))

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.provider == "anthropic"
    assert caught.value.status == 500
    assert "anthropic returned HTTP 500" in str(caught.value)
    assert "the backend fell over" in str(caught.value)
    assert len(fake.anthropic.requests) == 3  # the first try and max_retries=2


async def test_a_400_fails_at_once_with_the_upstream_message(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.script(failure(400, "messages.0.content: Field required"))

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.status == 400
    assert "invalid_request_error: messages.0.content: Field required" in str(caught.value)
    assert KEY not in str(caught.value)
    assert len(fake.anthropic.requests) == 1


async def test_a_refused_key_names_the_variable_not_the_key(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.script(failure(401, f"invalid x-api-key: {KEY}"))

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.status == 401
    assert "ANTHROPIC_API_KEY" in str(caught.value)
    assert "invalid x-api-key: ***" in str(caught.value)
    assert KEY not in str(caught.value)


async def test_a_transient_error_inside_the_stream_is_tried_again(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.script(failure(529, "Overloaded", mode="stream_error"), reply_text("second try"))
    pieces: list[str] = []

    reply = await clients.client(ROUTE).respond(request(), pieces.append)

    assert reply.text == "second try"
    assert "".join(pieces) == "second try"
    assert len(fake.anthropic.requests) == 2


async def test_a_stream_error_that_persists_fails_without_a_status(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.respond_with(failure(529, "Overloaded", mode="stream_error"))

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.status is None
    assert "overloaded_error: Overloaded" in str(caught.value)
    assert len(fake.anthropic.requests) == 3


async def test_a_stream_error_of_another_kind_is_not_tried_again(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.script(failure(400, "bad tool result", mode="stream_error"))

    with pytest.raises(ProviderError, match="bad tool result") as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.status is None
    assert len(fake.anthropic.requests) == 1


async def test_a_stream_that_breaks_off_before_any_text_is_tried_again(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.anthropic.script(failure(mode="drop"), reply_text("whole"))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.text == "whole"
    assert len(fake.anthropic.requests) == 2


async def test_a_stream_that_breaks_off_after_text_fails(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    # Another try would show the caller the beginning of the text twice.
    fake.anthropic.script(failure(mode="drop", partial_text="Half an"), reply_text("unused"))
    pieces: list[str] = []

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), pieces.append)

    assert caught.value.status is None
    assert "".join(pieces) == "Half an"
    assert len(fake.anthropic.requests) == 1


async def test_no_key_and_no_endpoint_names_the_variable_to_set() -> None:
    clients = SdkModelClients(environ={})

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.status is None
    assert "set ANTHROPIC_API_KEY" in str(caught.value)
    assert "claude/sonnet-4-5" in str(caught.value)


async def test_an_unreachable_endpoint_fails_without_a_status() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once the socket is closed
    env = {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"}
    clients = SdkModelClients(environ=env, max_retries=0)

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.status is None
    assert "connection to the API failed" in str(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value)
    await clients.aclose()


async def test_settings_override_the_environment(fake: FakeProviders) -> None:
    env = {"ANTHROPIC_API_KEY": "env-key", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
    clients = SdkModelClients(
        anthropic_endpoint=ProviderEndpoint(base_url=fake.anthropic_base_url, api_key="set-key"),
        environ=env,
    )
    fake.anthropic.script(reply_text("ok"))

    await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert sent_key(fake.anthropic.received[0].headers) == "set-key"
    assert "set-key" not in repr(ProviderEndpoint(api_key="set-key"))
    await clients.aclose()


async def test_an_auth_token_is_used_when_there_is_no_key(fake: FakeProviders) -> None:
    env = {"ANTHROPIC_AUTH_TOKEN": "tok-1", "ANTHROPIC_BASE_URL": fake.anthropic_base_url}
    clients = SdkModelClients(environ=env)
    fake.anthropic.script(reply_text("ok"))

    await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert fake.anthropic.received[0].headers["authorization"] == "Bearer tok-1"
    await clients.aclose()


async def test_one_client_per_endpoint_and_key_variable(clients: SdkModelClients) -> None:
    other = ModelRoute(slug="claude/haiku-4-5", provider="anthropic", upstream_model="h")
    proxied = ModelRoute(
        slug="claude/opus-4-7",
        provider="anthropic",
        upstream_model="o",
        base_url="http://127.0.0.1:9",
        api_key_env="PROXY_KEY",
    )

    assert clients.client(ROUTE) is clients.client(other)
    assert clients.client(proxied) is not clients.client(ROUTE)


async def test_the_fake_also_answers_without_streaming(fake: FakeProviders) -> None:
    fake.anthropic.script(reply_tool("bash", {"command": "ls"}, id="toolu_9", text="Sure."))
    sdk = anthropic.AsyncAnthropic(api_key=KEY, base_url=fake.anthropic_base_url)

    message = await sdk.messages.create(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )

    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 5
    await sdk.close()


async def test_a_responder_answers_from_the_conversation(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    def answer(req: RecordedRequest) -> Reply:
        if req.steps_done == 0:
            return reply_tool("bash", {"command": "date"}, id="call_d")
        (result,) = req.tool_results()
        return reply_text(f"{result.call_id} said {result.text} (error: {result.is_error})")

    fake.anthropic.respond_with(answer)
    client = clients.client(ROUTE)
    first = await client.respond(request(), lambda _t: None)
    conversation = (
        Message("user", (Text("what time is it"),)),
        Message("assistant", first.content),
        Message("user", (ToolResult("call_d", (Text("noon"),), is_error=True),)),
    )

    second = await client.respond(request(*conversation), lambda _t: None)

    assert first.tool_uses == [ToolUse("call_d", "bash", {"command": "date"})]
    assert second.text == "call_d said noon (error: True)"


async def test_a_stream_without_message_stop_is_cut_off(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        },
    }
    fake.anthropic.script(
        Reply(
            raw_stream=(
                start,
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": "Half"},
                },
            )
        )
    )
    pieces: list[str] = []

    with pytest.raises(ProviderError, match="broke off"):
        await clients.client(ROUTE).respond(request(), pieces.append)

    assert pieces == ["Half"]
    assert len(fake.anthropic.requests) == 1  # text went out: not tried again
