"""A provider-neutral conversation with a model: what the loop sends and gets back.

Provider adapters (``adapters/providers``) translate these to and from the Anthropic
Messages and OpenAI Chat Completions wire formats; nothing here knows either. Files
carry their bytes (or a URL) while the run is in memory; the log records them by
reference (:class:`puras_common.events.types.FileBlock`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

from puras_common.events.types import ModelUsage
from puras_common.textsafety import MAX_JSON_DEPTH, NestingTooDeep, escape_json, escape_text

__all__ = [
    "RAW_ARGUMENTS_KEY",
    "AssistantBlock",
    "Document",
    "Image",
    "Message",
    "ModelReply",
    "ModelRequest",
    "ModelRoute",
    "OnText",
    "ResultBlock",
    "Text",
    "ToolDef",
    "ToolResult",
    "ToolUse",
    "UserBlock",
    "storable_reply",
]

ProviderName = Literal["anthropic", "openai"]
"""The two wire protocols: Anthropic Messages, OpenAI Chat Completions (which also
serves Gemini's OpenAI-compatible endpoint, vLLM, Ollama, llama.cpp ...)."""


@dataclass(frozen=True, slots=True)
class Text:
    text: str


RAW_ARGUMENTS_KEY: Final = "_raw"
"""A tool call whose arguments are not a JSON object gets ``{RAW_ARGUMENTS_KEY: text}``
as its input (the provider adapters do this): the call is kept, since the model made it
and the log records what it sent, and is answered with an error it can correct."""


@dataclass(frozen=True, slots=True)
class ToolUse:
    """The model asks for a tool call."""

    id: str
    name: str
    input: dict[str, Any]

    @property
    def malformed(self) -> str | None:
        """The arguments as sent when they were not a JSON object, else ``None``."""
        raw = self.input.get(RAW_ARGUMENTS_KEY) if len(self.input) == 1 else None
        return raw if isinstance(raw, str) else None

    def malformed_error(self) -> str | None:
        raw = self.malformed
        if raw is None:
            return None
        shown = raw if len(raw) <= 200 else raw[:200] + "..."
        return (
            f"the arguments of this {self.name} call are not a JSON object ({shown!r}); "
            "call it again with its arguments as a JSON object"
        )


@dataclass(frozen=True, slots=True)
class Image:
    """A vision block: the bytes, or a URL the provider fetches itself."""

    media_type: str
    data: bytes | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """A PDF block (Anthropic only): the bytes, or a URL."""

    media_type: str
    data: bytes | None = None
    url: str | None = None


ResultBlock: TypeAlias = Text | Image | Document
"""What a tool result may hold."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The answer to one :class:`ToolUse`, sent back in the next user message."""

    call_id: str
    content: tuple[ResultBlock, ...]
    is_error: bool = False


UserBlock: TypeAlias = Text | Image | Document | ToolResult
AssistantBlock: TypeAlias = Text | ToolUse


@dataclass(frozen=True, slots=True)
class Message:
    role: Literal["user", "assistant"]
    content: tuple[UserBlock | AssistantBlock, ...]


@dataclass(frozen=True, slots=True)
class ToolDef:
    """A tool as the model is offered it."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelRoute:
    """Which upstream serves a slug and what the model can take (A9: configuration)."""

    slug: str
    """``family/variant`` as ``skill.yaml`` names it."""
    provider: ProviderName
    """The wire protocol of the upstream."""
    upstream_model: str
    """The provider's model id."""
    vision: bool = True
    """Takes image blocks."""
    pdf: bool = False
    """Takes PDF document blocks."""
    context_window: int = 200_000
    """Tokens of context the model takes."""
    max_output_tokens: int = 8192
    """``max_tokens`` of each call."""
    base_url: str | None = None
    """The upstream's base URL (``None``: the SDK's own, or its environment variable)."""
    api_key_env: str | None = None
    """Environment variable holding the key (``None``: the SDK's own variable)."""


@dataclass(frozen=True, slots=True)
class ModelRequest:
    route: ModelRoute
    system: str
    tools: tuple[ToolDef, ...]
    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class ModelReply:
    """One whole model response."""

    content: tuple[AssistantBlock, ...]
    stop_reason: str
    """Neutral: ``end_turn``, ``tool_use``, ``max_tokens``, else the provider's own."""
    usage: ModelUsage = field(default_factory=ModelUsage)

    @property
    def tool_uses(self) -> list[ToolUse]:
        return [b for b in self.content if isinstance(b, ToolUse)]

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, Text))


OnText = Callable[[str], None]
"""Called with each piece of the model's text as it is generated (live frames)."""


def storable_reply(reply: ModelReply) -> ModelReply:
    """``reply`` as the log can hold it (Z9): NUL and lone surrogates in its text and tool
    arguments become U+FFFD; arguments nested beyond the log's depth limit become
    malformed ones (the model is told to send them again). The conversation goes on with
    this reply, so a resumed run sees what the first attempt saw."""
    content: list[AssistantBlock] = []
    for block in reply.content:
        if isinstance(block, Text):
            content.append(Text(escape_text(block.text)))
            continue
        try:
            args = escape_json(block.input)
        except NestingTooDeep:
            args = {RAW_ARGUMENTS_KEY: f"arguments nested deeper than {MAX_JSON_DEPTH} levels"}
        content.append(ToolUse(escape_text(block.id), escape_text(block.name), args))
    return ModelReply(tuple(content), escape_text(reply.stop_reason), reply.usage)
