"""The agent loop's decisions (A1, A4): a scripted model, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from puras_runner.domain.agent.conversation import (
    Message,
    ModelReply,
    ModelRoute,
    Text,
    ToolResult,
    ToolUse,
)
from puras_runner.domain.agent.loop import (
    NO_SET_OUTPUT_ERROR,
    AgentLoop,
    AgentSpec,
    CallModel,
    Finish,
    RunTool,
    set_output_tool,
)
from puras_runner.domain.outcome import Failed, Succeeded

ROUTE = ModelRoute(slug="claude/sonnet-4-6", provider="anthropic", upstream_model="m")
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
}


def _loop(*, schema: dict[str, Any] | None = SCHEMA, max_steps: int = 5) -> AgentLoop:
    tools = (set_output_tool(schema),) if schema is not None else ()
    spec = AgentSpec(
        route=ROUTE, system="be brief", tools=tools, output_schema=schema, max_steps=max_steps
    )
    return AgentLoop(spec, (Text("hi"),))


def _reply(*blocks: Text | ToolUse) -> ModelReply:
    stop = "tool_use" if any(isinstance(b, ToolUse) for b in blocks) else "end_turn"
    return ModelReply(tuple(blocks), stop)


def _ok(call: ToolUse, text: str = "done") -> ToolResult:
    return ToolResult(call.id, (Text(text),))


def test_the_first_action_calls_the_model_with_the_system_prompt_and_first_message() -> None:
    action = _loop().next()
    assert isinstance(action, CallModel)
    assert action.step == 1
    assert action.request.system == "be brief"
    assert action.request.messages == (Message("user", (Text("hi"),)),)
    assert [t.name for t in action.request.tools] == ["set_output"]


def test_tool_calls_run_in_order_then_the_results_go_back_in_one_user_message() -> None:
    loop = _loop()
    a, b = ToolUse("c1", "bash", {"command": "ls"}), ToolUse("c2", "bash", {"command": "pwd"})
    loop.next()
    loop.model_replied(_reply(Text("looking"), a, b))
    first = loop.next()
    assert isinstance(first, RunTool)
    assert first.call == a
    assert first.step == 1
    loop.tool_done(_ok(a))
    second = loop.next()
    assert isinstance(second, RunTool)
    assert second.call == b
    loop.tool_done(_ok(b))
    again = loop.next()
    assert isinstance(again, CallModel)
    assert again.step == 2
    last = again.request.messages[-1]
    assert last.role == "user"
    assert [r.call_id for r in last.content if isinstance(r, ToolResult)] == ["c1", "c2"]


def test_a_valid_set_output_ends_the_run_and_later_calls_are_ignored() -> None:
    loop = _loop()
    loop.next()
    out = ToolUse("s", "set_output", {"answer": "42"})
    later = ToolUse("l", "bash", {"command": "rm -rf drive"})
    loop.model_replied(_reply(out, later))
    action = loop.next()
    assert isinstance(action, RunTool)
    assert action.call == out
    result = loop.set_output(out)
    assert not result.is_error
    loop.tool_done(result)
    end = loop.next()
    assert isinstance(end, Finish)
    assert end.outcome == Succeeded({"answer": "42"})


def test_an_invalid_set_output_is_answered_with_the_validator_message_and_the_run_goes_on() -> None:
    loop = _loop()
    loop.next()
    bad = ToolUse("s1", "set_output", {"answer": 7})
    loop.model_replied(_reply(bad))
    result = loop.set_output(bad)
    assert result.is_error
    text = result.content[0]
    assert isinstance(text, Text)
    assert "set_output.answer: 7 is not of type 'string'" in text.text
    loop.tool_done(result)
    assert isinstance(loop.next(), CallModel)
    good = ToolUse("s2", "set_output", {"answer": "seven"})
    loop.model_replied(_reply(good))
    loop.tool_done(loop.set_output(good))
    end = loop.next()
    assert isinstance(end, Finish)
    assert end.outcome == Succeeded({"answer": "seven"})


def test_stopping_without_set_output_fails_with_the_exact_message() -> None:
    loop = _loop()
    loop.next()
    loop.model_replied(_reply(Text("all done!")))
    end = loop.next()
    assert isinstance(end, Finish)
    assert end.outcome == Failed(NO_SET_OUTPUT_ERROR)
    assert NO_SET_OUTPUT_ERROR == "agent finished without calling set_output"


def test_without_an_output_schema_the_result_is_the_final_text() -> None:
    loop = _loop(schema=None)
    loop.next()
    loop.model_replied(_reply(Text("Hello"), Text(", world")))
    end = loop.next()
    assert isinstance(end, Finish)
    assert end.outcome == Succeeded({"text": "Hello, world"})


def test_the_step_limit_ends_a_run_that_keeps_calling_tools() -> None:
    loop = _loop(max_steps=2)
    for n in range(2):
        action = loop.next()
        assert isinstance(action, CallModel)
        assert action.step == n + 1
        call = ToolUse(f"c{n}", "bash", {"command": "true"})
        loop.model_replied(_reply(call))
        loop.next()
        loop.tool_done(_ok(call))
    end = loop.next()
    assert isinstance(end, Finish)
    assert isinstance(end.outcome, Failed)
    assert "step limit: 2 model calls" in end.outcome.error


def test_answering_a_call_that_is_not_pending_is_a_bug() -> None:
    loop = _loop()
    loop.next()
    loop.model_replied(_reply(ToolUse("c1", "bash", {"command": "ls"})))
    with pytest.raises(RuntimeError):
        loop.tool_done(ToolResult("other", (Text("x"),)))
