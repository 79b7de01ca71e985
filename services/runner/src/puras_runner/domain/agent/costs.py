"""What a model call may cost at most, before it is made (Z1 cost caps).

The cap is checked before every model call against what the job has spent plus the
call's worst case: its input (estimated from the request) plus ``max_tokens`` of output,
at the slug's rates. The estimate errs high, so a job stops before the call that could
take it over its cap, never after.
"""

from __future__ import annotations

import json
from typing import Final

from puras_runner.domain.agent.conversation import (
    Document,
    Image,
    ModelRequest,
    Text,
    ToolResult,
    ToolUse,
)

__all__ = ["CHARS_PER_TOKEN", "cap_error", "estimate_input_tokens"]

CHARS_PER_TOKEN: Final = 3
"""Fewer characters a token than any tokenizer of the catalog averages on text (about 4
for English), so the estimate is an upper bound for ordinary text."""
IMAGE_TOKENS: Final = 1_600
"""The most an image costs on the catalog's vision models (Anthropic: about 1,600 tokens
for the largest image it does not scale down)."""
DOCUMENT_BYTES_PER_TOKEN: Final = 50
DOCUMENT_MIN_TOKENS: Final = 3_000


def estimate_input_tokens(request: ModelRequest) -> int:
    """An upper estimate of the request's input tokens."""
    chars = len(request.system)
    chars += sum(
        len(t.name) + len(t.description) + len(json.dumps(t.input_schema)) for t in request.tools
    )
    tokens = 0
    for message in request.messages:
        for block in message.content:
            blocks = block.content if isinstance(block, ToolResult) else (block,)
            for part in blocks:
                if isinstance(part, Text):
                    chars += len(part.text)
                elif isinstance(part, ToolUse):
                    chars += len(part.name) + len(json.dumps(part.input))
                elif isinstance(part, Image):
                    tokens += IMAGE_TOKENS
                elif isinstance(part, Document):
                    size = len(part.data) if part.data is not None else 0
                    tokens += max(DOCUMENT_MIN_TOKENS, size // DOCUMENT_BYTES_PER_TOKEN)
    return tokens + -(-chars // CHARS_PER_TOKEN)


def cap_error(spent: int, cap: int) -> str:
    """Z1's exact message."""
    return f"cost cap reached: {spent} of {cap} micros"
