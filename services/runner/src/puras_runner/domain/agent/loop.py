"""The agent loop as a pure state machine (A1, A4): what to do next, given what happened.

The engine asks :meth:`AgentLoop.next` for the next action — call the model, run one
tool call, or finish — does it (the I/O is behind ports), records it in the log, and
feeds the result back (:meth:`AgentLoop.model_replied`, :meth:`AgentLoop.tool_done`).
A resumed run feeds the recorded responses and results through the same two methods
before it asks for anything, so a replay reaches exactly the state the first attempt
was in when it stopped (Z4).

The run ends when the model stops asking for tools, on a valid ``set_output`` call
(later tool calls of that response are ignored), or at the step limit (a step is one
model call). Cancel and the wall-clock limit are the engine's: they stop it between
actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from puras_common.schemas import validate_instance
from puras_runner.domain.agent.conversation import (
    Message,
    ModelReply,
    ModelRequest,
    ModelRoute,
    Text,
    ToolDef,
    ToolResult,
    ToolUse,
    UserBlock,
)
from puras_runner.domain.outcome import Failed, Outcome, Succeeded

__all__ = [
    "NO_SET_OUTPUT_ERROR",
    "SET_OUTPUT",
    "AgentLoop",
    "AgentSpec",
    "CallModel",
    "Finish",
    "RunTool",
    "set_output_tool",
    "step_limit_error",
]

SET_OUTPUT: Final = "set_output"
NO_SET_OUTPUT_ERROR: Final = "agent finished without calling set_output"
"""A4's exact message."""
SET_OUTPUT_DESCRIPTION: Final = (
    "Record the final structured output for this job. Calling this ends the run. "
    "The argument must match the schema below."
)


def set_output_tool(output_schema: Mapping[str, Any]) -> ToolDef:
    """The auto-injected lifecycle tool: its input schema is the skill's
    ``output_schema`` verbatim (K3, A4)."""
    return ToolDef(SET_OUTPUT, SET_OUTPUT_DESCRIPTION, dict(output_schema))


def step_limit_error(max_steps: int) -> str:
    return (
        f"agent stopped at its step limit: {max_steps} model calls without finishing "
        "(raise max_steps in skill.yaml, up to 1000, or make the prompt end sooner)"
    )


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """What a run is: fixed for its whole life (and for every attempt of it)."""

    route: ModelRoute
    system: str
    tools: tuple[ToolDef, ...]
    """Every tool offered, ``set_output`` included when there is an output schema."""
    output_schema: dict[str, Any] | None
    max_steps: int


@dataclass(frozen=True, slots=True)
class CallModel:
    step: int
    """1-based number of this model call."""
    request: ModelRequest


@dataclass(frozen=True, slots=True)
class RunTool:
    step: int
    """The step whose response asked for the call."""
    call: ToolUse


@dataclass(frozen=True, slots=True)
class Finish:
    outcome: Outcome


Action = CallModel | RunTool | Finish


class AgentLoop:
    """One run's conversation and where it stands."""

    def __init__(self, spec: AgentSpec, first_message: tuple[UserBlock, ...]) -> None:
        self.spec = spec
        self.messages: list[Message] = [Message("user", first_message)]
        self.step = 0
        """Model calls made (or replayed) so far."""
        self._pending: list[ToolUse] = []
        """Tool calls of the last response not answered yet, in order."""
        self._results: list[ToolResult] = []
        self._last: ModelReply | None = None
        self._outcome: Outcome | None = None

    @property
    def finished(self) -> bool:
        return self._outcome is not None

    def next(self) -> Action:
        if self._outcome is not None:
            return Finish(self._outcome)
        if self._pending:
            return RunTool(self.step, self._pending[0])
        last = self._last
        if last is not None and not last.tool_uses:
            return Finish(self._end_without_tools(last))
        if self.step >= self.spec.max_steps:
            return Finish(Failed(step_limit_error(self.spec.max_steps)))
        request = ModelRequest(
            route=self.spec.route,
            system=self.spec.system,
            tools=self.spec.tools,
            messages=tuple(self.messages),
        )
        return CallModel(self.step + 1, request)

    def model_replied(self, reply: ModelReply) -> None:
        """The response of the call :meth:`next` asked for (live or replayed)."""
        if self._pending or self._outcome is not None:
            raise RuntimeError("a model response arrived while tool calls were pending")
        self.step += 1
        self._last = reply
        self.messages.append(Message("assistant", reply.content))
        self._pending = list(reply.tool_uses)
        self._results = []

    def tool_done(self, result: ToolResult) -> None:
        """The result of the pending call :meth:`next` named (live or replayed)."""
        if not self._pending or self._pending[0].id != result.call_id:
            raise RuntimeError(f"no pending tool call {result.call_id!r} to answer")
        self._pending.pop(0)
        self._results.append(result)
        if self._outcome is not None:
            # A valid set_output ended the run: the response's later calls are ignored.
            self._pending = []
        if not self._pending:
            self.messages.append(Message("user", tuple(self._results)))
            self._results = []

    def set_output(self, call: ToolUse) -> ToolResult:
        """Answer a ``set_output`` call: a valid one ends the run with its input as the
        result; an invalid one is answered with the validator's message (A4)."""
        schema = self.spec.output_schema
        if schema is None:
            return ToolResult(
                call.id,
                (Text("set_output is not available: this skill has no output_schema"),),
                is_error=True,
            )
        problem = call.malformed_error() or validate_instance(schema, call.input, root="set_output")
        if problem is not None:
            return ToolResult(
                call.id,
                (
                    Text(
                        f"invalid output, nothing was recorded: {problem}. "
                        "Call set_output again with a corrected value."
                    ),
                ),
                is_error=True,
            )
        self._outcome = Succeeded(dict(call.input))
        return ToolResult(call.id, (Text("output recorded; the run is complete"),))

    def _end_without_tools(self, last: ModelReply) -> Outcome:
        if self.spec.output_schema is not None:
            return Failed(NO_SET_OUTPUT_ERROR)
        return Succeeded({"text": last.text})
