"""Tool-call arguments as the model streamed them, parsed into the neutral input."""

from __future__ import annotations

import json
from typing import Any

# Kept as the call's input so the model gets an error it can correct, which a local
# model that writes broken JSON now and then needs more than a failed job.
from puras_runner.domain.agent.conversation import RAW_ARGUMENTS_KEY

__all__ = ["RAW_ARGUMENTS_KEY", "parse_arguments"]


def parse_arguments(text: str) -> dict[str, Any]:
    """``text`` as a JSON object; empty (a tool without parameters) is ``{}``."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {RAW_ARGUMENTS_KEY: text}
    return value if isinstance(value, dict) else {RAW_ARGUMENTS_KEY: text}
