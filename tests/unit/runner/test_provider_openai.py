"""The OpenAI Chat Completions adapter: the real ``openai`` SDK against the local fake
(and the fake's own ways of running: on a thread, scripted over HTTP)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from fake_providers import (
    FakeProviders,
    Gate,
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
    NO_KEY_PLACEHOLDER,
    RAW_ARGUMENTS_KEY,
    OpenAIChatClient,
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

ROUTE = ModelRoute(slug="gpt/4o", provider="openai", upstream_model="gpt-4o", max_output_tokens=777)
KEY = "sk-openai-test-key-5678"
BASH = ToolDef("bash", "Run a shell command.", {"type": "object", "properties": {}})


def request(
    *messages: Message, system: str = "You are a skill.", route: ModelRoute = ROUTE
) -> ModelRequest:
    msgs = messages or (Message("user", (Text("hello"),)),)
    return ModelRequest(route=route, system=system, tools=(BASH,), messages=msgs)


@pytest.fixture
async def fake() -> AsyncIterator[FakeProviders]:
    async with FakeProviders() as fake:
        yield fake


@pytest.fixture
async def clients(fake: FakeProviders) -> AsyncIterator[SdkModelClients]:
    env = {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.openai_base_url}
    clients = SdkModelClients(environ=env, max_retries=2, retry_delay_s=0)
    yield clients
    await clients.aclose()


async def test_text_is_streamed_piece_by_piece(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.openai.script(reply_text("Forty-two, as ever."))
    pieces: list[str] = []

    reply = await clients.client(ROUTE).respond(request(), pieces.append)

    assert reply.content == (Text("Forty-two, as ever."),)
    assert len(pieces) > 1
    assert "".join(pieces) == reply.text
    assert reply.stop_reason == "end_turn"
    (sent,) = fake.openai.received
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["model"] == "gpt-4o"
    # A compatible server's base URL: the parameter every server knows.
    assert sent.body["max_tokens"] == 777


async def test_openai_itself_gets_max_completion_tokens(fake: FakeProviders) -> None:
    sdk = openai.AsyncOpenAI(api_key=KEY, base_url=fake.openai_base_url)
    client = OpenAIChatClient(sdk, label="openai", key_env="OPENAI_API_KEY")
    fake.openai.script(reply_text("ok"))

    await client.respond(request(), lambda _t: None)

    body = fake.openai.requests[0]
    assert body["max_completion_tokens"] == 777
    assert "max_tokens" not in body
    await sdk.close()


async def test_streamed_tool_call_fragments_are_put_together(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.openai.script(
        reply_tools(
            tool_call("bash", {"command": "ls -la /tmp", "timeout": 30}, id="call_a"),
            tool_call("set_output", {"output": {"items": ["x", "y"]}}, id="call_b"),
            tool_call("web_search", id="call_c"),
        )
    )

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.content == (
        ToolUse("call_a", "bash", {"command": "ls -la /tmp", "timeout": 30}),
        ToolUse("call_b", "set_output", {"output": {"items": ["x", "y"]}}),
        ToolUse("call_c", "web_search", {}),
    )
    assert reply.stop_reason == "tool_use"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"command": "ls', {RAW_ARGUMENTS_KEY: '{"command": "ls'}),
        ("[1, 2]", {RAW_ARGUMENTS_KEY: "[1, 2]"}),
        ("", {}),
    ],
)
async def test_arguments_that_are_not_a_json_object_are_kept_raw(
    fake: FakeProviders, clients: SdkModelClients, raw: str, expected: dict[str, str]
) -> None:
    fake.openai.script(reply_tools(ToolCall("bash", id="call_1", raw_arguments=raw)))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.tool_uses == [ToolUse("call_1", "bash", expected)]


async def test_usage_separates_cached_prompt_tokens(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    usage = Usage(input_tokens=700, output_tokens=42, cache_read_tokens=300)
    fake.openai.script(reply_text("ok", usage=usage))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.usage == ModelUsage(input_tokens=700, output_tokens=42, cache_read_tokens=300)


@pytest.mark.parametrize(
    ("finish", "neutral"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "content_filter")],
)
async def test_finish_reasons(
    fake: FakeProviders, clients: SdkModelClients, finish: str, neutral: str
) -> None:
    fake.openai.script(reply_text("partial", stop_reason=finish))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.stop_reason == neutral


async def test_tool_calls_finished_with_stop_still_mean_tool_use(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    # What some compatible servers (Ollama) send.
    fake.openai.script(
        Reply(tool_calls=(tool_call("bash", {"command": "id"}),), stop_reason="stop")
    )

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.stop_reason == "tool_use"


async def test_conversation_is_translated_to_chat_messages(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    png = b"\x89PNG fake"
    data_url = f"data:image/png;base64,{base64.b64encode(png).decode()}"
    conversation = (
        Message("user", (Text("What is in the drive?"), Text('{"n": 1}'))),
        Message(
            "assistant",
            (
                Text("Looking."),
                ToolUse("call_1", "bash", {"command": "ls"}),
                ToolUse("call_2", "file_read", {"paths": ["a.png"]}),
            ),
        ),
        Message(
            "user",
            (
                ToolResult("call_1", (Text("exit 1"), Text("ls: denied")), is_error=True),
                ToolResult("call_2", (Text("a.png"), Image("image/png", data=png))),
                Text("Hurry."),
            ),
        ),
        Message("assistant", (ToolUse("call_3", "web_fetch", {"url": "https://x.test"}),)),
        Message(
            "user",
            (ToolResult("call_3", (Image("image/jpeg", url="https://x.test/p.jpg"),)),),
        ),
    )
    fake.openai.script(reply_text("ok"))

    await clients.client(ROUTE).respond(request(*conversation, system="Be brief."), lambda _t: None)

    assert fake.openai.requests[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": 'What is in the drive?\n\n{"n": 1}'},
        {
            "role": "assistant",
            "content": "Looking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "bash", "arguments": '{"command": "ls"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "file_read", "arguments": '{"paths": ["a.png"]}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Error: exit 1\nls: denied"},
        {
            "role": "tool",
            "tool_call_id": "call_2",
            "content": "a.png\n[the image(s) of this result follow in the next user message]",
        },
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": data_url}},
                {"type": "text", "text": "Hurry."},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_3",
                    "type": "function",
                    "function": {"name": "web_fetch", "arguments": '{"url": "https://x.test"}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_3",
            "content": "[the image(s) of this result follow in the next user message]",
        },
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x.test/p.jpg"}}],
        },
    ]
    assert fake.openai.requests[0]["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "bash",
                "description": "Run a shell command.",
                "parameters": BASH.input_schema,
            },
        }
    ]


async def test_a_pdf_is_refused_before_any_call(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    pdf = Message("user", (Text("Summarise."), Document("application/pdf", data=b"%PDF")))

    with pytest.raises(ProviderError, match="no PDF documents") as caught:
        await clients.client(ROUTE).respond(request(pdf), lambda _t: None)

    assert caught.value.status is None
    assert fake.openai.requests == []


async def test_a_rate_limit_is_retried_and_the_success_returned(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.openai.script(failure(429, "Rate limit reached"), reply_text("made it"))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.text == "made it"
    assert len(fake.openai.requests) == 2
    assert fake.openai.requests[0] == fake.openai.requests[1]


async def test_persistent_500_fails_naming_provider_and_status(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.openai.respond_with(failure(500, "The server had an error"))

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.provider == "openai"
    assert caught.value.status == 500
    assert "openai returned HTTP 500" in str(caught.value)
    assert "The server had an error" in str(caught.value)
    assert len(fake.openai.requests) == 3


async def test_a_400_fails_at_once(fake: FakeProviders, clients: SdkModelClients) -> None:
    fake.openai.script(failure(400, "Invalid schema for function 'bash'"))

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.status == 400
    assert "Invalid schema for function 'bash'" in str(caught.value)
    assert KEY not in str(caught.value)
    assert len(fake.openai.requests) == 1


async def test_a_transient_error_inside_the_stream_is_tried_again(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.openai.script(
        failure(500, "upstream went away", mode="stream_error"), reply_text("second try")
    )
    pieces: list[str] = []

    reply = await clients.client(ROUTE).respond(request(), pieces.append)

    assert reply.text == "second try"
    assert "".join(pieces) == "second try"
    assert len(fake.openai.requests) == 2


async def test_a_stream_error_that_persists_fails_without_a_status(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.openai.respond_with(failure(500, "upstream went away", mode="stream_error"))

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.status is None
    assert "server_error: upstream went away" in str(caught.value)
    assert len(fake.openai.requests) == 3


async def test_a_stream_error_of_another_kind_is_not_tried_again(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.openai.script(failure(400, "bad tool result", mode="stream_error"))

    with pytest.raises(ProviderError, match="bad tool result") as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.status is None
    assert len(fake.openai.requests) == 1


async def test_a_stream_that_breaks_off_before_any_text_is_tried_again(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    fake.openai.script(failure(mode="drop"), reply_text("whole"))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.text == "whole"
    assert len(fake.openai.requests) == 2


async def test_a_stream_that_breaks_off_after_text_fails(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    # Another try would show the caller the beginning of the text twice.
    fake.openai.script(failure(mode="drop", partial_text="Half an"), reply_text("unused"))
    pieces: list[str] = []

    with pytest.raises(ProviderError) as caught:
        await clients.client(ROUTE).respond(request(), pieces.append)

    assert caught.value.status is None
    assert "".join(pieces) == "Half an"
    assert len(fake.openai.requests) == 1


async def test_no_key_and_no_endpoint_names_the_variable_to_set() -> None:
    clients = SdkModelClients(environ={})
    assert not clients.configured(ROUTE)

    with pytest.raises(ProviderError, match="set OPENAI_API_KEY") as caught:
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert caught.value.status is None


async def test_a_local_server_needs_no_key(fake: FakeProviders) -> None:
    clients = SdkModelClients(environ={"OPENAI_BASE_URL": fake.openai_base_url})
    assert clients.configured(ROUTE)
    fake.openai.script(reply_text("from the local model"))

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.text == "from the local model"
    auth = fake.openai.received[0].headers["authorization"]
    assert auth == f"Bearer {NO_KEY_PLACEHOLDER}"
    await clients.aclose()


async def test_settings_override_the_environment(fake: FakeProviders) -> None:
    clients = SdkModelClients(
        openai_endpoint=ProviderEndpoint(base_url=fake.openai_base_url, api_key="set-key"),
        environ={"OPENAI_API_KEY": "env-key", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
    )
    fake.openai.script(reply_text("ok"))

    await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert fake.openai.received[0].headers["authorization"] == "Bearer set-key"
    await clients.aclose()


async def test_a_route_with_its_own_endpoint_and_key_wins(fake: FakeProviders) -> None:
    gemini = ModelRoute(
        slug="gemini/2.5-flash",
        provider="openai",
        upstream_model="gemini-2.5-flash",
        base_url=f"{fake.base_url}/v1beta/openai/",
        api_key_env="GEMINI_API_KEY",
    )
    env = {
        "GEMINI_API_KEY": "gem-key",
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    }
    clients = SdkModelClients(
        openai_endpoint=ProviderEndpoint(base_url="http://127.0.0.1:9/v1", api_key="set-key"),
        environ=env,
    )
    fake.openai.script(reply_text("hi from gemini"), failure(404, "models/x is not found"))

    reply = await clients.client(gemini).respond(request(route=gemini), lambda _t: None)
    with pytest.raises(ProviderError) as caught:
        await clients.client(gemini).respond(request(route=gemini), lambda _t: None)

    assert reply.text == "hi from gemini"
    sent = fake.openai.received[0]
    assert sent.path == "/v1beta/openai/chat/completions"
    assert sent.headers["authorization"] == "Bearer gem-key"
    assert sent.body["model"] == "gemini-2.5-flash"
    assert str(caught.value).startswith("model call failed: gemini returned HTTP 404")
    await clients.aclose()


async def test_a_route_whose_key_variable_is_unset_fails_naming_it() -> None:
    gemini = ModelRoute(
        slug="gemini/2.5-pro",
        provider="openai",
        upstream_model="gemini-2.5-pro",
        base_url="https://generativelanguage.googleapis.com/v1beta/openai/",
        api_key_env="GEMINI_API_KEY",
    )
    clients = SdkModelClients(environ={"OPENAI_API_KEY": KEY})

    with pytest.raises(ProviderError, match="set GEMINI_API_KEY") as caught:
        await clients.client(gemini).respond(request(route=gemini), lambda _t: None)

    assert caught.value.provider == "gemini"


async def test_the_fake_also_answers_without_streaming(fake: FakeProviders) -> None:
    fake.openai.script(reply_tool("bash", {"command": "ls"}, id="call_9", text="Sure."))
    sdk = openai.AsyncOpenAI(api_key=KEY, base_url=fake.openai_base_url)

    completion = await sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}]
    )

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Sure."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert (call.id, call.function.name) == ("call_9", "bash")
    assert json.loads(call.function.arguments) == {"command": "ls"}
    assert completion.usage is not None
    assert completion.usage.total_tokens == 15
    await sdk.close()


async def test_a_reply_may_depend_on_the_request(fake: FakeProviders) -> None:
    gate = asyncio.Event()

    async def answer(_req: RecordedRequest) -> Reply:
        await gate.wait()
        return reply_text(f"{len(fake.openai.requests)} request(s) seen")

    fake.openai.respond_with(lambda req: reply_text(f"you said {req.body['messages'][-1]}"))
    fake.openai.script(answer)
    sdk = openai.AsyncOpenAI(api_key=KEY, base_url=fake.openai_base_url, max_retries=0)

    pending = asyncio.create_task(
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}])
    )
    await fake.openai.wait_for_requests(1)
    assert not pending.done()
    gate.set()
    first = await pending
    second = await sdk.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "b"}]
    )

    assert first.choices[0].message.content == "1 request(s) seen"
    assert second.choices[0].message.content == "you said {'role': 'user', 'content': 'b'}"
    await sdk.close()


async def test_nothing_scripted_fails_at_once() -> None:
    async with FakeProviders() as fake:
        sdk = openai.AsyncOpenAI(api_key=KEY, base_url=fake.openai_base_url)
        with pytest.raises(openai.BadRequestError, match="nothing scripted"):
            await sdk.chat.completions.create(model="m", messages=[])
        assert len(fake.openai.requests) == 1
        await sdk.close()


async def test_the_fake_runs_on_a_thread_and_is_scripted_over_http() -> None:
    with FakeProviders.in_thread() as fake:
        async with httpx.AsyncClient(base_url=fake.base_url) as http:
            scripted = await http.post(
                "/_fake/openai/script",
                json=[
                    {"error": {"status": 429, "message": "later"}},
                    {"text": "threaded", "usage": {"input_tokens": 3, "output_tokens": 1}},
                ],
            )
            assert scripted.json() == {"pending": 2}
            clients = SdkModelClients(
                environ={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.openai_base_url}
            )

            reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

            assert reply.text == "threaded"
            assert reply.usage == ModelUsage(input_tokens=3, output_tokens=1)
            seen = (await http.get("/_fake/openai/requests")).json()
            assert len(seen) == 2
            assert fake.openai.wait_for_requests_blocking(2)[1].body["model"] == "gpt-4o"
            await clients.aclose()


async def test_a_responder_answers_from_the_conversation(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    def answer(req: RecordedRequest) -> Reply:
        if req.steps_done == 0:
            return reply_tool("bash", {"command": "date"}, id="call_d")
        (result,) = req.tool_results()
        return reply_text(f"{result.call_id} said {result.text} (error: {result.is_error})")

    fake.openai.respond_with(answer)
    client = clients.client(ROUTE)
    first = await client.respond(request(), lambda _t: None)
    conversation = (
        Message("user", (Text("what time is it"),)),
        Message("assistant", first.content),
        Message("user", (ToolResult("call_d", (Text("noon"),), is_error=True),)),
    )

    second = await client.respond(request(*conversation), lambda _t: None)

    assert first.tool_uses == [ToolUse("call_d", "bash", {"command": "date"})]
    assert second.text == "call_d said Error: noon (error: True)"


def _chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _whole_call(call_id: str, name: str, arguments: str, index: int | None) -> dict[str, object]:
    call: dict[str, object] = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    if index is not None:
        call["index"] = index
    return _chunk({"tool_calls": [call]})


@pytest.mark.parametrize("index", [None, 0], ids=["no index", "every call index 0"])
async def test_whole_tool_calls_from_other_servers_stay_apart(
    fake: FakeProviders, clients: SdkModelClients, index: int | None
) -> None:
    # Servers that send each call whole (Gemini's endpoint among them) may leave out
    # the index, or number every call 0.
    fake.openai.script(
        Reply(
            raw_stream=(
                _chunk({"role": "assistant", "content": "Two calls."}),
                _whole_call("c1", "bash", '{"command": "a"}', index),
                _whole_call("c2", "bash", '{"command": "b"}', index),
                _chunk({}, "stop"),
            )
        )
    )

    reply = await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert reply.content == (
        Text("Two calls."),
        ToolUse("c1", "bash", {"command": "a"}),
        ToolUse("c2", "bash", {"command": "b"}),
    )
    assert reply.stop_reason == "tool_use"
    assert reply.usage == ModelUsage()  # no usage chunk: none reported


async def test_a_stream_without_a_finish_reason_is_cut_off(
    fake: FakeProviders, clients: SdkModelClients
) -> None:
    truncated = Reply(raw_stream=(_chunk({"content": "Half"}),))
    fake.openai.script(truncated)

    with pytest.raises(ProviderError, match="broke off"):
        await clients.client(ROUTE).respond(request(), lambda _t: None)

    assert len(fake.openai.requests) == 1  # text went out: not tried again


async def test_a_gate_holds_a_reply_until_opened_from_another_thread() -> None:
    gate = Gate()
    with FakeProviders.in_thread() as fake:
        fake.openai.script(gate.hold(reply_text("released")))
        clients = SdkModelClients(
            environ={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": fake.openai_base_url}
        )
        call = asyncio.create_task(clients.client(ROUTE).respond(request(), lambda _t: None))
        assert await asyncio.to_thread(gate.reached.wait, 10)
        assert not call.done()

        gate.open()
        reply = await call

        assert reply.text == "released"
        await clients.aclose()
