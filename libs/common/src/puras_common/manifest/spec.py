"""The parsed shape of a skill: what deploy-time validation produces and events carry."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = ["SkillKind", "SkillSpec", "ToolSpec"]

SkillKind = Literal["deterministic", "agentic"]


class ToolSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A user tool declared by an agentic skill (run like a deterministic skill)."""

    name: str
    description: str = ""
    entrypoint: str
    """``tools/x.py:run``, relative to the skill folder."""
    input_schema: dict[str, Any] = msgspec.field(default_factory=dict)
    output_schema: dict[str, Any] | None = None


class SkillSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One skill of a deployment, as validated from ``skills/<name>/skill.yaml``."""

    name: str
    """The folder name under ``skills/``."""
    kind: SkillKind
    """Decided by the entrypoint: ``.md`` is agentic, ``file.py:func`` deterministic."""
    entrypoint: str
    description: str = ""
    model: str | None = None
    """Model slug of an agentic skill (``None``: the platform default)."""
    disable_bash: bool = False
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    tools: list[ToolSpec] = msgspec.field(default_factory=list)
    timeout_seconds: int | None = None
    """Wall-clock limit of one run; ``None`` takes the runner's default."""
    max_steps: int | None = None
    """Most model calls of one agentic run; ``None`` takes the runner's default."""
    max_cost_micros: int | None = None
    """Z1: the most one job of the skill may spend, in micros, unless its submit says
    otherwise (``None``: no cap)."""

    @property
    def module_file(self) -> str:
        """For a deterministic skill, the ``.py`` file part of the entrypoint."""
        return self.entrypoint.split(":", 1)[0]

    @property
    def function(self) -> str:
        """For a deterministic skill, the function part of the entrypoint."""
        return self.entrypoint.split(":", 1)[1]
