"""The agentic engine end to end over fakes: the loop's steps recorded in the job's log
in order (A10), set_output (A4), tools (A2, A3), cancel (J6), resuming from the log (Z4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from agent_fakes import (
    ANSWER,
    AgentRig,
    FakeSandbox,
    ScriptedModel,
    agent_job,
    text,
    tool,
    until,
)
from runner_fakes import T0, FakeLog

from puras_common.events.ids import (
    job_agent_started_id,
    job_model_response_id,
    job_started_id,
    job_tool_call_id,
    job_usage_id,
)
from puras_common.events.types import (
    AgentStarted,
    BilledCall,
    JobCancelled,
    JobCharged,
    JobFailed,
    JobQueued,
    JobStarted,
    JobSucceeded,
    ModelResponded,
    ModelUsage,
    SkillRecord,
    TextBlock,
    ToolCalled,
    ToolRecord,
    ToolResulted,
    ToolUseBlock,
    UsageRecorded,
)
from puras_runner.app.ports import BashResult, ToolCallResult
from puras_runner.domain.agent.conversation import ModelReply, Text, ToolResult, ToolUse
from puras_runner.domain.agent.errors import ProviderError

Rig = AgentRig
_job = agent_job


async def test_a_multi_step_run_records_every_step_in_order_and_succeeds(tmp_path: Path) -> None:
    model = ScriptedModel(
        tool("bash", {"command": "echo $((6*7))"}, say="Let me compute."),
        tool("set_output", {"answer": "42"}),
    )
    session = FakeSandbox(commands={"echo $((6*7))": BashResult(0, "42\n")})
    rig = Rig(tmp_path, model, session=session)
    msg = await rig.run()
    assert msg.acked == 1
    assert rig.agent_types() == [
        "job.started",
        "job.agent_start",
        "job.model_response",
        "job.usage",
        "job.tool_call",
        "job.tool_result",
        "job.model_response",
        "job.usage",
        "job.tool_call",
        "job.tool_result",
        "job.succeeded",
    ]
    (done,) = rig.log.events(JobSucceeded)
    assert done.result == {"answer": "42"}
    (start,) = rig.log.events(AgentStarted)
    assert start.model == "claude/sonnet-4-6"  # the platform default, recorded (A9)
    assert start.tools[0] == "bash"
    assert start.tools[-1] == "set_output"
    bash_result = rig.log.events(ToolResulted)[0]
    assert bash_result.content == [TextBlock(text="exit code: 0\n42\n")]
    usage = rig.log.events(UsageRecorded)
    assert [(u.step, u.provider, u.model, u.usage.input_tokens) for u in usage] == [
        (1, "anthropic", "claude/sonnet-4-6", 20),
        (2, "anthropic", "claude/sonnet-4-6", 20),
    ]
    # The model saw the bash result before its second step.
    second = model.requests[1].messages[-1]
    assert second.role == "user"
    (result,) = second.content
    assert isinstance(result, ToolResult)
    assert result.content == (Text("exit code: 0\n42\n"),)
    # The first user message: the prompt; the system prompt is the skill's markdown (A1).
    assert model.requests[0].system == "You answer briefly."
    assert model.requests[0].messages[0].content == (Text("what is 6 x 7?"),)
    # Live text, never stored one by one (Z5).
    assert [f["text"] for f in rig.live.frames if f["step"] == 1] == ["Let me ", "compute."]
    assert session.closed


async def test_the_other_inputs_follow_the_prompt_as_json(tmp_path: Path) -> None:
    model = ScriptedModel(tool("set_output", {"answer": "ok"}))
    rig = Rig(tmp_path, model)
    await rig.run(_job(prompt="Summarise.", tone="dry", n=3))
    first = model.requests[0].messages[0].content
    assert first[0] == Text("Summarise.")
    assert isinstance(first[1], Text)
    assert '"tone": "dry"' in first[1].text
    assert '"n": 3' in first[1].text


async def test_a_run_that_never_calls_set_output_fails_with_the_a4_message(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ScriptedModel(text("The answer is 42.")))
    await rig.run()
    (failed,) = rig.log.events(JobFailed)
    assert failed.error == "agent finished without calling set_output"


async def test_without_an_output_schema_the_result_is_the_final_text(tmp_path: Path) -> None:
    skill = SkillRecord(name="agent", kind="agentic", entrypoint="SKILL.md")
    rig = Rig(tmp_path, ScriptedModel(text("Forty-two.")), skill=skill)
    await rig.run()
    (done,) = rig.log.events(JobSucceeded)
    assert done.result == {"text": "Forty-two."}


async def test_an_invalid_set_output_goes_back_to_the_model_which_corrects_it(
    tmp_path: Path,
) -> None:
    model = ScriptedModel(
        tool("set_output", {"answer": 42}, call_id="bad"),
        tool("set_output", {"answer": "42"}, call_id="good"),
    )
    rig = Rig(tmp_path, model)
    await rig.run()
    bad, good = rig.log.events(ToolResulted)
    assert bad.is_error
    assert "set_output.answer: 42 is not of type 'string'" in bad.content[0].text
    assert not good.is_error
    assert rig.log.events(JobSucceeded)[0].result == {"answer": "42"}


async def test_disable_bash_offers_no_bash_and_a_bash_call_is_a_tool_error(tmp_path: Path) -> None:
    skill = SkillRecord(
        name="agent", kind="agentic", entrypoint="SKILL.md", output_schema=ANSWER, disable_bash=True
    )
    model = ScriptedModel(tool("bash", {"command": "ls"}), tool("set_output", {"answer": "x"}))
    session = FakeSandbox()
    rig = Rig(tmp_path, model, skill=skill, session=session)
    await rig.run()
    assert "bash" not in [t.name for t in model.requests[0].tools]
    result = rig.log.events(ToolResulted)[0]
    assert result.is_error
    assert "there is no tool named 'bash'" in result.content[0].text
    assert session.ran == []


async def test_a_user_tool_result_violating_its_output_schema_goes_back_to_the_model(
    tmp_path: Path,
) -> None:
    lookup = ToolRecord(
        name="lookup",
        entrypoint="tools/lookup.py:run",
        input_schema={"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        output_schema={"type": "object", "required": ["hits"]},
    )
    skill = SkillRecord(
        name="agent", kind="agentic", entrypoint="SKILL.md", output_schema=ANSWER, tools=[lookup]
    )
    session = FakeSandbox(tool_results={"lookup": ToolCallResult(value={"nope": 1})})
    model = ScriptedModel(
        tool("lookup", {"q": 3}, call_id="t1"),
        tool("lookup", {"q": "cats"}, call_id="t2"),
        tool("set_output", {"answer": "none"}),
    )
    rig = Rig(tmp_path, model, skill=skill, session=session)
    await rig.run()
    wrong_input, wrong_output, _ = rig.log.events(ToolResulted)
    assert wrong_input.is_error
    assert "input.q: 3 is not of type 'string'" in wrong_input.content[0].text
    assert wrong_output.is_error
    assert "does not match its output_schema" in wrong_output.content[0].text
    assert session.tool_calls == [("lookup", {"q": "cats"})]  # a bad input never reaches it
    assert rig.log.events(JobSucceeded)


async def test_search_without_a_backend_is_a_tool_error_not_a_failed_job(tmp_path: Path) -> None:
    model = ScriptedModel(
        tool("web_search", {"query": "puras"}), tool("set_output", {"answer": "?"})
    )
    rig = Rig(tmp_path, model)
    await rig.run()
    result = rig.log.events(ToolResulted)[0]
    assert result.is_error
    assert "not configured" in result.content[0].text
    assert rig.log.events(JobSucceeded)
    assert rig.sandboxes.opened == 0  # nothing needed the sandbox


async def test_media_answers_that_it_is_not_configured(tmp_path: Path) -> None:
    model = ScriptedModel(
        tool("media", {"model": "openai/gpt-image-2", "inputs": {"prompt": "a bike"}}),
        tool("set_output", {"answer": "no"}),
    )
    rig = Rig(tmp_path, model)
    await rig.run()
    result = rig.log.events(ToolResulted)[0]
    assert result.is_error
    assert "media generation is not configured" in result.content[0].text


async def test_secrets_printed_by_bash_are_masked_in_the_tool_result(tmp_path: Path) -> None:
    session = FakeSandbox(commands={"env": BashResult(0, "TOKEN=s3cret-value-123\n")})
    model = ScriptedModel(tool("bash", {"command": "env"}), tool("set_output", {"answer": "x"}))
    rig = Rig(tmp_path, model, session=session, secrets={"TOKEN": "s3cret-value-123"})
    await rig.run()
    result = rig.log.events(ToolResulted)[0]
    assert result.content == [TextBlock(text="exit code: 0\nTOKEN=***\n")]
    assert rig.sandboxes.secrets == {"TOKEN": "s3cret-value-123"}


async def test_a_provider_error_fails_the_job_naming_the_provider(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ScriptedModel(ProviderError("anthropic", "overloaded", status=500)))
    msg = await rig.run()
    (failed,) = rig.log.events(JobFailed)
    assert failed.error == "model call failed: anthropic returned HTTP 500: overloaded"
    assert msg.acked == 1


async def test_a_run_that_loops_forever_ends_at_the_step_limit(tmp_path: Path) -> None:
    replies = [tool("bash", {"command": "true"}, call_id=f"c{n}") for n in range(3)]
    rig = Rig(tmp_path, ScriptedModel(*replies), max_steps=3)
    await rig.run()
    (failed,) = rig.log.events(JobFailed)
    assert "step limit: 3 model calls" in failed.error
    assert len(rig.model.requests) == 3


async def test_the_skill_max_steps_overrides_the_runner_default(tmp_path: Path) -> None:
    skill = SkillRecord(
        name="agent", kind="agentic", entrypoint="SKILL.md", output_schema=ANSWER, max_steps=1
    )
    rig = Rig(tmp_path, ScriptedModel(tool("bash", {"command": "true"})), skill=skill)
    await rig.run()
    assert "step limit: 1 model calls" in rig.log.events(JobFailed)[0].error
    assert rig.log.events(AgentStarted)[0].max_steps == 1


async def test_the_wall_clock_limit_ends_the_run(tmp_path: Path) -> None:
    model = ScriptedModel(text("never"))
    model.gate = __import__("asyncio").Event()  # the call never returns
    rig = Rig(tmp_path, model, timeout_s=0.05)
    await rig.run()
    (failed,) = rig.log.events(JobFailed)
    assert failed.error.startswith("agent run timed out after 0.05 s")


async def test_cancel_lets_the_tool_in_flight_complete_then_stops(tmp_path: Path) -> None:
    import asyncio

    gate = asyncio.Event()
    session = FakeSandbox(bash_gate=gate)
    model = ScriptedModel(tool("bash", {"command": "sleep 1"}), text("unreachable"))
    rig = Rig(tmp_path, model, session=session)
    task = asyncio.create_task(rig.run())
    await session.in_bash.wait()
    rig.log.put(JobCancelled(finished_at=T0), "job-1:terminal")
    gate.set()
    msg = await task
    assert msg.acked == 1
    assert len(model.requests) == 1  # no step after the cancel
    assert session.ran == ["sleep 1"]  # the call in flight completed
    assert session.closed
    assert not rig.log.events(JobFailed)
    assert not rig.log.events(JobSucceeded)


async def test_a_model_call_in_flight_at_cancel_is_recorded_with_its_usage(tmp_path: Path) -> None:
    import asyncio

    model = ScriptedModel(tool("bash", {"command": "ls"}))
    model.gate = asyncio.Event()
    rig = Rig(tmp_path, model)
    task = asyncio.create_task(rig.run())
    await model.in_call.wait()
    rig.log.put(JobCancelled(finished_at=T0), "job-1:terminal")
    model.gate.set()
    msg = await task
    assert msg.acked == 1
    types = rig.agent_types()
    assert types[-2:] == ["job.model_response", "job.usage"]
    assert "job.cancelled" in types[:-2]  # recorded after the end: it was made, and is paid for
    assert rig.sandboxes.session.ran == []


def _recorded_first_attempt(log: FakeLog, *, with_result: bool) -> None:
    """What attempt 1 recorded before its runner died: step 1 asked for bash; the call
    was recorded, its result only if ``with_result``."""
    job = "job-1"
    log.put(
        JobQueued(skill="agent", inputs={"prompt": "p"}, deployment_id="dep-1", created_at=T0),
        f"{job}:queued",
    )
    log.put(
        JobStarted(attempt=1, deployment_id="dep-1", runner_id="r0", started_at=T0),
        job_started_id(job, 1),
    )
    log.put(
        AgentStarted(
            model="claude/sonnet-4-6",
            provider="anthropic",
            upstream_model="claude-test",
            tools=["bash"],
            max_steps=10,
        ),
        job_agent_started_id(job),
    )
    log.put(
        ModelResponded(
            step=1,
            content=[
                TextBlock(text="listing"),
                ToolUseBlock(id="c1", name="bash", input={"command": "ls"}),
            ],
            stop_reason="tool_use",
            usage=ModelUsage(input_tokens=20, output_tokens=8),
        ),
        job_model_response_id(job, 1),
    )
    log.put(
        UsageRecorded(
            step=1,
            provider="anthropic",
            model="claude/sonnet-4-6",
            upstream_model="claude-test",
            usage=ModelUsage(input_tokens=20, output_tokens=8),
        ),
        job_usage_id(job, 1),
    )
    log.put(
        ToolCalled(step=1, call_id="c1", name="bash", input={"command": "ls"}),
        job_tool_call_id(job, 1, "c1"),
    )
    if with_result:
        log.put(
            ToolResulted(
                step=1,
                call_id="c1",
                name="bash",
                content=[TextBlock(text="exit code: 0\nfile.txt\n")],
            ),
            f"{job}:tool_result:1:c1",
        )


@pytest.mark.parametrize("with_result", [True, False])
async def test_a_redelivered_run_resumes_from_the_log(tmp_path: Path, with_result: bool) -> None:
    model = ScriptedModel(tool("set_output", {"answer": "file.txt"}))
    session = FakeSandbox(commands={"ls": BashResult(0, "file.txt\n")})
    rig = Rig(tmp_path, model, session=session)
    _recorded_first_attempt(rig.log, with_result=with_result)
    msg = await rig.run(attempt=2)
    assert msg.acked == 1
    # Step 1's recorded response is never asked for again: one model call, step 2.
    assert len(model.requests) == 1
    messages = model.requests[0].messages
    assert [m.role for m in messages] == ["user", "assistant", "user"]
    (result,) = messages[2].content
    assert isinstance(result, ToolResult)
    assert result.content == (Text("exit code: 0\nfile.txt\n"),)
    # Only the tool call without a recorded result runs again; nothing is recorded twice.
    assert session.ran == ([] if with_result else ["ls"])
    assert len(rig.log.events(AgentStarted)) == 1
    assert len(rig.log.events(ToolCalled)) == 2  # step 1's bash (once) and set_output
    assert [r.step for r in rig.log.events(ModelResponded)] == [1, 2]
    assert rig.log.events(JobSucceeded)[0].result == {"answer": "file.txt"}


async def test_a_response_recorded_without_its_usage_gets_it_on_resume(tmp_path: Path) -> None:
    rig = Rig(tmp_path, ScriptedModel(tool("set_output", {"answer": "x"})))
    _recorded_first_attempt(rig.log, with_result=True)
    rig.log.stored = [s for s in rig.log.stored if not isinstance(s.event, UsageRecorded)]
    await rig.run(attempt=2)
    assert [u.step for u in rig.log.events(UsageRecorded)] == [1, 2]
    await until(lambda: bool(rig.log.events(JobSucceeded)))


async def test_arguments_that_are_not_json_are_answered_with_an_error_to_correct(
    tmp_path: Path,
) -> None:
    session = FakeSandbox()
    model = ScriptedModel(
        tool("bash", {"_raw": '{"command": "ls'}, call_id="broken"),
        tool("set_output", {"answer": "fixed"}),
    )
    rig = Rig(tmp_path, model, session=session)
    await rig.run()
    result = rig.log.events(ToolResulted)[0]
    assert result.is_error
    assert result.content[0].text.startswith(
        "the arguments of this bash call are not a JSON object"
    )
    assert session.ran == []
    assert rig.log.events(JobSucceeded)


async def test_unstorable_text_from_the_model_and_tools_is_escaped_and_long_output_capped(
    tmp_path: Path,
) -> None:
    lookup = ToolRecord(name="lookup", entrypoint="tools/lookup.py:run")
    skill = SkillRecord(
        name="agent", kind="agentic", entrypoint="SKILL.md", output_schema=ANSWER, tools=[lookup]
    )
    session = FakeSandbox(
        commands={"big": BashResult(0, "é" * 200_000)},
        tool_results={"lookup": ToolCallResult(value={"odd": "a\x00b\ud800c"})},
    )
    model = ScriptedModel(
        tool("lookup", {"q": "x\x00"}, call_id="t1", say="nul\x00here"),
        tool("bash", {"command": "big"}, call_id="t2"),
        tool("set_output", {"answer": "done"}),
    )
    rig = Rig(tmp_path, model, skill=skill, session=session)
    await rig.run()
    assert rig.log.events(JobSucceeded)
    response = rig.log.events(ModelResponded)[0]
    assert response.content[0] == TextBlock(text="nul\ufffdhere")
    assert isinstance(response.content[1], ToolUseBlock)
    assert response.content[1].input == {"q": "x\ufffd"}
    odd, big = rig.log.events(ToolResulted)[:2]
    assert "a\\u0000b\ufffdc" in odd.content[0].text  # NUL as JSON writes it
    text = big.content[0].text
    assert len(text.encode()) < 300 * 1024  # one event fits a NATS message
    assert text.endswith("more characters not shown]")


async def test_billing_recording_a_cost_mid_run_does_not_stop_the_attempt(tmp_path: Path) -> None:
    import asyncio

    gate = asyncio.Event()
    session = FakeSandbox(bash_gate=gate)
    model = ScriptedModel(tool("bash", {"command": "ls"}), tool("set_output", {"answer": "x"}))
    rig = Rig(tmp_path, model, session=session)
    task = asyncio.create_task(rig.run())
    await session.in_bash.wait()
    call = BilledCall(
        usage_id="u1",
        job_id="job-1",
        step=1,
        provider="anthropic",
        model="claude/sonnet-4-6",
        billed_micros=12,
        registry_version="t",
        margin_pct=20,
    )
    rig.log.put(JobCharged(call=call), "cost:u1")  # billing, while the tool runs
    gate.set()
    msg = await task
    assert msg.acked == 1
    assert rig.log.events(JobSucceeded)
    assert [e.attempt for e in rig.log.events(JobStarted)] == [1]
    assert "job.cost" in rig.agent_types()


def _costly(name: str, args: dict[str, Any], call_id: str) -> ModelReply:
    return ModelReply(
        (ToolUse(call_id, name, args),),
        "tool_use",
        ModelUsage(input_tokens=10_000, output_tokens=1_000),  # 36,000 + 18,000 micros
    )


async def test_the_cost_cap_stops_the_run_before_a_call_that_could_pass_it(tmp_path: Path) -> None:
    model = ScriptedModel(
        _costly("bash", {"command": "ls"}, "c1"), _costly("set_output", {"answer": "x"}, "c2")
    )
    rig = Rig(tmp_path, model)
    job = msgspec.structs.replace(_job(), max_cost_micros=160_000)
    await rig.run(job)
    (failed,) = rig.log.events(JobFailed)
    # The first call fit (its worst case: ~5k of input + 8,192 tokens of output), the
    # second's worst case on top of the 54,000 spent did not.
    assert failed.error == "cost cap reached: 54000 of 160000 micros"
    assert len(model.requests) == 1
    assert len(rig.log.events(UsageRecorded)) == 1


async def test_a_cap_below_any_call_stops_the_run_before_its_first_call(tmp_path: Path) -> None:
    model = ScriptedModel(text("never"))
    rig = Rig(tmp_path, model)
    await rig.run(msgspec.structs.replace(_job(), max_cost_micros=10))
    assert rig.log.events(JobFailed)[0].error == "cost cap reached: 0 of 10 micros"
    assert model.requests == []
