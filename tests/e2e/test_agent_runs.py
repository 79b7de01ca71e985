"""Agentic skills end to end: the real SDKs in the runner against a scripted fake of the
providers' HTTP APIs, bash and user tools in the real sandbox, events over HTTP and SSE
(A1-A10, J5, J6, Z4, Z5).

One stack per module, pointed at one fake (``ANTHROPIC_BASE_URL``, ``OPENAI_BASE_URL``);
a fresh project per test. The fake's script is set before each submit.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_providers import (
    FakeProviders,
    Gate,
    RecordedRequest,
    Reply,
    Usage,
    failure,
    reply_text,
    reply_tool,
)

from puras_cli.devstack import Stack
from stackapi import Api, new_api, start_stack, stop_stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PROJECT = Path(__file__).parent / "agent_project"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviders]:
    with FakeProviders.in_thread() as f:
        yield f


@pytest.fixture(scope="module")
def agent_stack(fake: FakeProviders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The operator's routes: one slug to the fake's OpenAI side as a text-only model.
    routes = tmp_path_factory.mktemp("routes") / "routes.yaml"
    routes.write_text(
        json.dumps(
            {
                "gemini/2.0-flash": {
                    "base_url": fake.openai_base_url,
                    "api_key_env": "OPENAI_API_KEY",
                    "upstream_model": "text-only-model",
                    "vision": False,
                }
            }
        )
    )
    s, work = start_stack(
        {
            "PURAS_RUNNER_MODEL_ROUTES_FILE": str(routes),
            "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
            "ANTHROPIC_API_KEY": "sk-ant-test-key",
            "OPENAI_BASE_URL": fake.openai_base_url,
            "OPENAI_API_KEY": "sk-openai-test-key",
            "PURAS_RUNNER_PROVIDER_MAX_RETRIES": "2",
        }
    )
    try:
        yield s
    finally:
        stop_stack(s, work)


@pytest.fixture
def agent_api(
    agent_stack: Stack, fake: FakeProviders, request: pytest.FixtureRequest
) -> Iterator[Api]:
    fake.anthropic.reset()
    fake.openai.reset()
    a = new_api(agent_stack, request.node.name)
    r = a.push(PROJECT, notes="agents")
    assert r.status_code == 200, r.text
    try:
        yield a
    finally:
        a.close()


def _types(events: list[dict[str, Any]]) -> list[str]:
    # Logs, and billing's costs, land between the run's own events at their own pace.
    return [e["type"] for e in events if e["type"] not in ("log", "cost")]


def test_a_multi_step_run_with_bash_and_a_user_tool(agent_api: Api, fake: FakeProviders) -> None:
    fake.anthropic.script(
        reply_tool(
            "bash",
            {"command": "echo hi > note.txt && cat note.txt && echo $PURAS_SKILL"},
            text="Let me look.",
        ),
        reply_tool(
            "bash", {"command": "cat note.txt; python -c 'import puras; print(\"sdk ok\")'"}
        ),
        reply_tool("double", {"n": 21}),
        reply_tool("set_output", {"answer": "42"}),
    )
    job = agent_api.run("ask", {"prompt": "What is 21 doubled?"})
    assert job["status"] == "succeeded", job
    assert job["result"] == {"answer": "42"}
    events = agent_api.events(job["id"])
    assert _types(events) == [
        "queued",
        "started",
        "agent_start",
        *(["model_response", "usage", "tool_call", "tool_result"] * 4),
        "succeeded",
    ]
    start = next(e for e in events if e["type"] == "agent_start")["payload"]
    assert start["model"] == "claude/sonnet-4-6"
    assert start["tools"] == [
        "bash",
        "file_read",
        "media",
        "web_search",
        "image_search",
        "web_fetch",
        "download_url",
        "double",
        "set_output",
    ]
    results = [e["payload"] for e in events if e["type"] == "tool_result"]
    assert results[0]["content"][0]["text"] == "exit code: 0\nhi\nask\n"
    # The workdir lives as long as the run: the second call sees the first one's file.
    assert results[1]["content"][0]["text"] == "exit code: 0\nhi\nsdk ok\n"
    assert json.loads(results[2]["content"][0]["text"])["doubled"] == 42
    # The provider saw each step once, with the system prompt cached and the bash output.
    sent = fake.anthropic.requests
    assert len(sent) == 4
    assert sent[0]["system"][0]["text"].startswith("You answer questions.")
    assert sent[0]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent[0]["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert sent[0]["model"] == "claude-sonnet-4-6"
    assert "hi" in json.dumps(sent[1]["messages"][-1])
    usage = [e["payload"] for e in events if e["type"] == "usage"]
    assert next((u["provider"], u["model"], u["input_tokens"]) for u in usage) == (
        "anthropic",
        "claude/sonnet-4-6",
        10,
    )


def test_the_stream_carries_live_text_then_the_whole_response(
    agent_api: Api, fake: FakeProviders
) -> None:
    fake.anthropic.script(
        reply_tool("set_output", {"answer": "streamed"}, text="Thinking about it now.")
    )
    frames: list[tuple[str, dict[str, Any]]] = []
    with agent_api.http.stream(
        "POST",
        "/v1/jobs",
        params={"stream": "true"},
        json={"skill": "ask", "inputs": {"prompt": "go"}},
    ) as r:
        assert r.status_code == 200
        event = ""
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                frames.append((event, json.loads(line[6:])))
                if event == "end":
                    break
                event = ""
    kinds = [k or f["type"] for k, f in frames]
    assert kinds[-1] == "end"
    assert frames[-1][1]["status"] == "succeeded"
    deltas = [f["payload"]["text"] for k, f in frames if k == "model_delta"]
    assert "".join(deltas) == "Thinking about it now."
    assert kinds.index("model_delta") < kinds.index("model_response")
    # Deltas are live only: the log holds the whole response.
    job_id = frames[-1][1]["id"]
    stored = _types(agent_api.events(job_id))
    assert "model_delta" not in stored
    assert "model_response" in stored


def test_an_openai_model_answers_with_text(agent_api: Api, fake: FakeProviders) -> None:
    fake.openai.script(reply_text("Hello from GPT."))
    job = agent_api.run("chat", {"prompt": "hi", "mood": "cheerful"})
    assert job["status"] == "succeeded", job
    assert job["result"] == {"text": "Hello from GPT."}
    (sent,) = fake.openai.requests
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"][0] == {"role": "system", "content": "You chat briefly.\n"}
    assert "cheerful" in json.dumps(sent["messages"][1])
    assert "bash" not in [t["function"]["name"] for t in sent["tools"]]  # disable_bash


def test_a_pdf_on_a_gpt_model_fails_before_any_model_call(
    agent_api: Api, fake: FakeProviders
) -> None:
    pdf = base64.b64encode(b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n%%EOF\n").decode()
    job = agent_api.run(
        "look",
        {
            "prompt": "what is it?",
            "attachments": [{"base64": pdf, "media_type": "application/pdf"}],
        },
    )
    assert job["status"] == "failed"
    assert "PDF" in job["error"]
    assert "gpt/4o" in job["error"]
    assert fake.openai.requests == []


def test_an_image_attachment_reaches_the_model_as_a_vision_block(
    agent_api: Api, fake: FakeProviders
) -> None:
    png = base64.b64encode(
        bytes.fromhex(
            "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
            "1f15c4890000000d49444154789c6360000002000100e5270de40000000049454e44ae426082"
        )
    ).decode()
    fake.openai.script(reply_text("A single pixel."))
    job = agent_api.run(
        "look", {"prompt": "describe", "attachments": [{"base64": png, "media_type": "image/png"}]}
    )
    assert job["status"] == "succeeded", job
    (sent,) = fake.openai.requests
    parts = sent["messages"][1]["content"]
    assert any(
        p.get("type") == "image_url" and p["image_url"]["url"].startswith("data:image/png;base64,")
        for p in parts
    )


def test_an_image_on_a_model_without_vision_fails_before_any_model_call(
    agent_api: Api, fake: FakeProviders
) -> None:
    job = agent_api.run(
        "blind",
        {"prompt": "what is it?", "attachments": [{"url": "https://cdn.example.com/a.png"}]},
    )
    assert job["status"] == "failed"
    assert "gemini/2.0-flash" in job["error"]
    assert "image" in job["error"]
    assert fake.openai.requests == []


def test_an_operator_route_sends_a_slug_where_configured(
    agent_api: Api, fake: FakeProviders
) -> None:
    fake.openai.script(reply_text("plain text only"))
    job = agent_api.run("blind", {"prompt": "hello"})
    assert job["status"] == "succeeded", job
    (sent,) = fake.openai.requests
    assert sent["model"] == "text-only-model"
    start = next(e for e in agent_api.events(job["id"]) if e["type"] == "agent_start")
    assert start["payload"]["model"] == "gemini/2.0-flash"


def test_an_invalid_set_output_is_corrected_by_the_model(
    agent_api: Api, fake: FakeProviders
) -> None:
    fake.anthropic.script(
        reply_tool("set_output", {"answer": 42}),
        reply_tool("set_output", {"answer": "42"}),
    )
    job = agent_api.run("ask", {"prompt": "x"})
    assert job["status"] == "succeeded", job
    assert job["result"] == {"answer": "42"}
    first = next(e for e in agent_api.events(job["id"]) if e["type"] == "tool_result")["payload"]
    assert first["is_error"]
    assert "set_output.answer: 42 is not of type 'string'" in first["content"][0]["text"]
    # The model was shown the validator's message as the tool result.
    assert "is not of type" in json.dumps(fake.anthropic.requests[1]["messages"][-1])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/v1/messages",  # the fake provider itself, on loopback
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    ],
)
def test_web_fetch_refuses_private_addresses(agent_api: Api, fake: FakeProviders, url: str) -> None:
    target = url.format(port=fake.port)
    fake.anthropic.script(
        reply_tool("web_fetch", {"url": target}),
        reply_tool("download_url", {"url": target, "path": "stolen/file.bin"}),
        reply_tool("set_output", {"answer": "refused"}),
    )
    job = agent_api.run("ask", {"prompt": "x"})
    assert job["status"] == "succeeded", job
    fetch, download = [
        e["payload"] for e in agent_api.events(job["id"]) if e["type"] == "tool_result"
    ][:2]
    for result in (fetch, download):
        assert result["is_error"]
        assert result["content"][0]["text"].startswith("refused:"), result
    assert len(fake.anthropic.requests) == 3  # nothing but the three model calls reached the fake


def test_a_provider_500_fails_the_job_naming_the_provider(
    agent_api: Api, fake: FakeProviders
) -> None:
    fake.anthropic.script(*[failure(500, "upstream exploded")] * 3)
    job = agent_api.run("ask", {"prompt": "x"})
    assert job["status"] == "failed"
    assert "anthropic" in job["error"]
    assert "500" in job["error"]
    assert len(fake.anthropic.requests) == 3  # the first call and its two retries


def test_a_rate_limit_is_retried_then_succeeds(agent_api: Api, fake: FakeProviders) -> None:
    fake.anthropic.script(
        failure(429, "slow down"), reply_tool("set_output", {"answer": "after 429"})
    )
    job = agent_api.run("ask", {"prompt": "x"})
    assert job["status"] == "succeeded", job
    assert job["result"] == {"answer": "after 429"}
    assert len(fake.anthropic.requests) == 2


def test_a_bash_timeout_is_a_tool_result_and_the_run_goes_on(
    agent_api: Api, fake: FakeProviders
) -> None:
    fake.anthropic.script(
        reply_tool("bash", {"command": "sleep 30; echo never", "timeout": 1}),
        reply_tool("set_output", {"answer": "timed out"}),
    )
    job = agent_api.run("ask", {"prompt": "x"})
    assert job["status"] == "succeeded", job
    result = next(e for e in agent_api.events(job["id"]) if e["type"] == "tool_result")["payload"]
    assert result["is_error"]
    assert "timeout" in result["content"][0]["text"]
    assert "never" not in result["content"][0]["text"]


def test_a_tool_that_raises_is_reported_to_the_model(agent_api: Api, fake: FakeProviders) -> None:
    fake.anthropic.script(
        reply_tool("double", {"n": -1}), reply_tool("set_output", {"answer": "no"})
    )
    job = agent_api.run("ask", {"prompt": "x"})
    assert job["status"] == "succeeded", job
    result = next(e for e in agent_api.events(job["id"]) if e["type"] == "tool_result")["payload"]
    assert result["is_error"]
    assert "ValueError" in result["content"][0]["text"]
    assert "only non-negative" in result["content"][0]["text"]


def test_a_run_that_never_calls_set_output_fails(agent_api: Api, fake: FakeProviders) -> None:
    fake.anthropic.script(reply_text("I think it's 42."))
    job = agent_api.run("ask", {"prompt": "x"})
    assert job["status"] == "failed"
    assert job["error"] == "agent finished without calling set_output"


def test_the_step_limit_ends_a_looping_agent(agent_api: Api, fake: FakeProviders) -> None:
    fake.anthropic.script(*[reply_tool("bash", {"command": "true"}, id=f"t{n}") for n in range(3)])
    job = agent_api.run("looper", {"prompt": "go"})
    assert job["status"] == "failed"
    assert "step limit: 3 model calls" in job["error"]


def test_cancel_mid_run_stops_between_steps(agent_api: Api, fake: FakeProviders) -> None:
    fake.anthropic.script(
        reply_tool("bash", {"command": "sleep 2; echo done"}),
        reply_tool("set_output", {"answer": "too late"}),
    )
    r = agent_api.submit("ask", {"prompt": "x"})
    job_id = r.json()["id"]
    agent_api.wait_for_event(job_id, "tool_call")
    c = agent_api.http.post(f"/v1/jobs/{job_id}/cancel")
    assert c.status_code == 200, c.text
    done = agent_api.wait_terminal(job_id)
    assert done["status"] == "cancelled"
    assert len(fake.anthropic.requests) == 1  # no step after the cancel


def _job_events_until(stack: Stack, project_id: str, job_id: str, type_: str, count: int) -> None:
    """Follow the job's subject in the log until ``count`` events of ``type_`` are there
    (billing records a job's cost after its runner records its end)."""
    import asyncio

    from puras_common.bus import connect
    from puras_common.events.base import decode_envelope
    from puras_common.events.subjects import AGG_JOB, event_subject

    async def follow() -> None:
        bus = await connect(stack.nats_url, name="e2e-cost")
        try:
            sub = await bus.js.subscribe(
                event_subject(project_id, AGG_JOB, job_id), ordered_consumer=True
            )
            seen = 0
            async with asyncio.timeout(60):
                async for msg in sub.messages:
                    if decode_envelope(msg.data).type == type_:
                        seen += 1
                        if seen == count:
                            return
        finally:
            await bus.close()

    asyncio.run(follow())


def test_an_agent_job_costs_exactly_what_its_model_calls_cost(
    agent_stack: Stack, agent_api: Api, fake: FakeProviders
) -> None:
    """B1, J8: claude/sonnet-4-6 at the published $3.60 / $18.00 per 1M tokens (the
    default 20 % margin included), cache reads at a tenth of the input rate."""
    fake.anthropic.script(
        reply_tool("bash", {"command": "true"}, usage=Usage(input_tokens=1000, output_tokens=500)),
        reply_tool(
            "set_output",
            {"answer": "priced"},
            usage=Usage(input_tokens=2000, output_tokens=100, cache_read_tokens=1000),
        ),
    )
    before = agent_api.http.get("/v1/billing/balance").json()["credit_balance_micros"]
    job = agent_api.run("ask", {"prompt": "x"})
    assert job["status"] == "succeeded", job
    _job_events_until(agent_stack, agent_api.project_id, job["id"], "job.cost", 2)
    step1 = 1000 * 36 // 10 + 500 * 18  # 3,600 + 9,000 micros
    step2 = 2000 * 36 // 10 + 100 * 18 + 1000 * 36 // 100  # 7,200 + 1,800 + 360
    rows = agent_api.http.get(f"/v1/jobs/{job['id']}/usage").json()["usage"]
    assert [(r["step"], r["model"], r["billed_micros"]) for r in rows] == [
        (1, "claude/sonnet-4-6", step1),
        (2, "claude/sonnet-4-6", step2),
    ]
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (1000, 500)
    final = agent_api.http.get(f"/v1/jobs/{job['id']}").json()
    assert final["cost_micros"] == step1 + step2 == sum(r["billed_micros"] for r in rows)
    costs = [e["payload"] for e in agent_api.events(job["id"]) if e["type"] == "cost"]
    assert [c["spent_micros"] for c in costs] == [step1, step1 + step2]
    after = agent_api.http.get("/v1/billing/balance").json()["credit_balance_micros"]
    assert before - after == step1 + step2


def test_a_job_stops_at_its_cost_cap(agent_api: Api, fake: FakeProviders) -> None:
    fake.anthropic.script(
        reply_tool(
            "bash", {"command": "true"}, usage=Usage(input_tokens=10_000, output_tokens=1_000)
        ),
        reply_tool("set_output", {"answer": "over"}),
    )
    r = agent_api.http.post(
        "/v1/jobs",
        params={"wait": "true", "timeout": 60},
        json={"skill": "ask", "inputs": {"prompt": "x"}, "max_cost_micros": 350_000},
    )
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["status"] == "failed"
    # 10,000 in + 1,000 out on claude/sonnet-4-6: 36,000 + 18,000 micros; the next call's
    # worst case (16,384 tokens of output alone: 294,912) would pass 350,000.
    assert job["error"] == "cost cap reached: 54000 of 350000 micros"
    assert len(fake.anthropic.requests) == 1
    bad = agent_api.http.post(
        "/v1/jobs", json={"skill": "ask", "inputs": {}, "max_cost_micros": -1}
    )
    assert bad.status_code == 400
    assert "max_cost_micros" in bad.json()["error"]["message"]


def test_a_runner_killed_mid_run_resumes_from_the_log(
    agent_stack: Stack, agent_api: Api, fake: FakeProviders
) -> None:
    """Z4: step 1 and its bash result are recorded; the runner dies during step 2's model
    call; the next attempt replays step 1 from the log (no second call, the bash not run
    again) and makes step 2's call."""
    in_step_2 = threading.Event()
    runner_gone = threading.Event()

    async def blocked(_request: RecordedRequest) -> Reply:
        in_step_2.set()
        import asyncio

        while not runner_gone.is_set():
            await asyncio.sleep(0.01)
        return reply_text("the runner that asked is gone")

    fake.anthropic.script(
        reply_tool("bash", {"command": "echo ran >> drive/bash-runs.txt; cat drive/bash-runs.txt"}),
        blocked,
        reply_tool("set_output", {"answer": "resumed"}),
    )
    job_id = agent_api.submit("ask", {"prompt": "x"}).json()["id"]
    assert in_step_2.wait(60)
    agent_stack.kill_service("runner", signal.SIGKILL)
    runner_gone.set()
    agent_stack.start_service("runner")
    done = agent_api.wait_terminal(job_id, timeout=90)
    assert done["status"] == "succeeded", done
    assert done["result"] == {"answer": "resumed"}
    assert done["attempts"] == 2
    sent = fake.anthropic.requests
    assert len(sent) == 3  # step 1 once; step 2 asked by both attempts (the first never answered)
    assert sent[1]["messages"] == sent[2]["messages"]  # the same conversation, rebuilt from the log
    events = agent_api.events(job_id)
    assert [e["payload"]["step"] for e in events if e["type"] == "model_response"] == [1, 2]
    bash = [
        e["payload"]
        for e in events
        if e["type"] == "tool_result" and e["payload"]["name"] == "bash"
    ]
    assert len(bash) == 1
    assert bash[0]["content"][0]["text"] == "exit code: 0\nran\n"


# -- Z1: per-key spend limits, and a project that stops agent jobs at zero ---------------

WORST_CASE_FLOOR = 16_384 * 18
"""A claude/sonnet-4-6 call's worst case is at least its max_tokens of output (16,384 at
$18.00 per 1M, margin included): 294,912 micros before its input is counted."""


def _key_with_limit(api: Api, micros: int, period: str = "day") -> Api:
    r = api.http.post("/v1/keys", json={"spend_limit": {"micros": micros, "period": period}})
    assert r.status_code == 200, r.text
    assert r.json()["spend_limit"] == {"micros": micros, "period": period}
    return Api(api.base, r.json()["key"], api.project_id, api.nats_url)


def test_concurrent_jobs_on_a_limited_key_never_pass_its_limit(
    agent_stack: Stack, agent_api: Api, fake: FakeProviders
) -> None:
    """Four jobs at once on a key limited to 700,000 micros a day: each call holds its
    worst case (about 300,000) before it is made, so only two calls are in flight and
    the other two jobs stop at the limit while nothing has been charged yet."""
    limited = _key_with_limit(agent_api, 700_000)
    gate = Gate()
    usage = Usage(input_tokens=10_000, output_tokens=1_000)  # 54,000 micros
    fake.anthropic.script(
        *(gate.hold(reply_tool("set_output", {"answer": "ok"}, usage=usage)) for _ in range(4))
    )
    ended: list[dict[str, Any]] = []
    changed = threading.Condition()

    def follow(job_id: str) -> None:
        end = limited.wait_terminal(job_id, timeout=90)
        with changed:
            ended.append(end)
            changed.notify_all()

    try:
        jobs = [limited.submit("ask", {"prompt": f"job {i}"}).json()["id"] for i in range(4)]
        threads = [threading.Thread(target=follow, args=(j,), daemon=True) for j in jobs]
        for t in threads:
            t.start()
        fake.anthropic.wait_for_requests_blocking(2, timeout=60)
        with changed:
            assert changed.wait_for(lambda: len(ended) >= 2, timeout=60), ended
            first_two = list(ended)
        # Both ended while the two calls in flight are still held: refused at the limit.
        assert len(fake.anthropic.received) == 2
    finally:
        gate.open()
    for t in threads:
        t.join(90)
    for end in first_two:
        assert end["status"] == "failed", end
        m = re.fullmatch(r"cost cap reached: (\d+) of 700000 micros", end["error"])
        assert m is not None, end["error"]
        # Two holds of at least the worst case's floor: nothing was charged yet.
        assert 2 * WORST_CASE_FLOOR <= int(m.group(1)) <= 700_000
    finals = [limited.http.get(f"/v1/jobs/{j}").json() for j in jobs]
    assert sorted(f["status"] for f in finals) == ["failed", "failed", "succeeded", "succeeded"]
    assert len(fake.anthropic.requests) == 2
    for f in finals:
        if f["status"] == "succeeded":
            _job_events_until(agent_stack, agent_api.project_id, f["id"], "job.cost", 1)
    costs = [limited.http.get(f"/v1/jobs/{j}").json()["cost_micros"] for j in jobs]
    assert sorted(costs) == [0, 0, 54_000, 54_000]
    keys = {k["prefix"]: k for k in agent_api.http.get("/v1/keys").json()["keys"]}
    prefix = limited.key.removeprefix("puras_live_").split(".")[0]
    assert keys[prefix]["spend_limit"] == {"micros": 700_000, "period": "day"}
    assert keys[prefix]["spent_micros"] == 2 * 54_000


def test_a_limited_key_stops_a_job_at_its_limit_and_charges_what_it_used(
    agent_stack: Stack, agent_api: Api, fake: FakeProviders
) -> None:
    """Room for one call's worst case, not two: the second call is never made."""
    # The first call's worst case fits in 340,000; after it was charged 90,000, the
    # second's (at least 294,912) does not.
    limited = _key_with_limit(agent_api, 340_000)
    fake.anthropic.script(
        reply_tool(
            "bash", {"command": "true"}, usage=Usage(input_tokens=20_000, output_tokens=1_000)
        ),
        reply_tool("set_output", {"answer": "never"}),
    )
    job = limited.run("ask", {"prompt": "x"})
    assert job["status"] == "failed"
    assert re.fullmatch(r"cost cap reached: \d+ of 340000 micros", job["error"]), job["error"]
    assert len(fake.anthropic.requests) == 1
    _job_events_until(agent_stack, agent_api.project_id, job["id"], "job.cost", 1)
    assert limited.http.get(f"/v1/jobs/{job['id']}").json()["cost_micros"] == 90_000
    # Lifted, the key runs jobs again.
    prefix = limited.key.removeprefix("puras_live_").split(".")[0]
    r = agent_api.http.delete(f"/v1/keys/{prefix}/spend_limit")
    assert r.status_code == 200, r.text
    assert r.json() == {"prefix": prefix, "spend_limit": None}
    fake.anthropic.script(reply_tool("set_output", {"answer": "free"}))
    assert limited.run("ask", {"prompt": "x"})["status"] == "succeeded"


def test_a_project_that_asks_for_it_stops_agent_jobs_at_zero(
    agent_stack: Stack, agent_api: Api, fake: FakeProviders
) -> None:
    """J7/B3 by default: a running job may take the balance below zero. With
    stop_agents_at_zero, a running agent job stops before its next model call once the
    balance is at or below zero (another job spent it here)."""
    r = agent_api.http.put("/v1/billing/policy", json={"stop_agents_at_zero": True})
    assert r.status_code == 200, r.text
    assert r.json() == {"stop_agents_at_zero": True}
    gate = Gate()
    huge = Usage(input_tokens=3_000_000, output_tokens=0)  # 10.8 USD: more than the 10 granted
    fake.anthropic.script(
        gate.hold(reply_tool("bash", {"command": "true"})),
        reply_tool("set_output", {"answer": "spent it"}, usage=huge),
    )
    try:
        slow = agent_api.submit("ask", {"prompt": "slow"}).json()["id"]
        assert gate.reached.wait(60)
        spender = agent_api.run("ask", {"prompt": "spend"})
        assert spender["status"] == "succeeded", spender
        # Charged (the ledger's charge is stored before the job's cost).
        _job_events_until(agent_stack, agent_api.project_id, spender["id"], "job.cost", 1)
        balance = agent_api.http.get("/v1/billing/balance").json()["credit_balance_micros"]
        assert balance < 0
    finally:
        gate.open()
    end = agent_api.wait_terminal(slow)
    assert end["status"] == "failed", end
    m = re.match(r"credit exhausted: the project's balance is (-\d+) micros", end["error"])
    assert m is not None, end["error"]
    # The slow job's own first call is charged too: at most what the spender left.
    assert int(m.group(1)) <= balance
    assert len(fake.anthropic.requests) == 2  # the slow job's second call was never made
    r = agent_api.http.put("/v1/billing/policy", json={"stop_agents_at_zero": "yes"})
    assert r.status_code == 400
