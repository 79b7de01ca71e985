"""Which model provider the demo's agentic skills use, from the demo's own environment.

The examples name Claude slugs (``hello`` the platform default, ``caption``
``claude/sonnet-4-7``, as in the docs). With an Anthropic key they run as written; with
only another provider configured, the demo routes every slug to that provider through a
routes file of its own (``PURAS_RUNNER_MODEL_ROUTES_FILE``, merged by the runner over its
shipped table), so the examples run unchanged on whatever the developer has. Only the
names of variables are ever printed, never their values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = [
    "ENABLE_HINT",
    "GEMINI_BASE_URL",
    "ModelSetup",
    "choose_models",
]

ENABLE_HINT: Final = (
    "agentic skills hello and caption skipped: set ANTHROPIC_API_KEY, OPENAI_API_KEY or "
    "GEMINI_API_KEY, or OPENAI_BASE_URL=http://127.0.0.1:11434/v1 for a local Ollama "
    "(model: PURAS_DEMO_MODEL, default llama3.2), to run them too"
)
DEFAULT_LOCAL_MODEL: Final = "llama3.2"
DEFAULT_OPENAI_MODEL: Final = "gpt-4o-mini"
DEFAULT_GEMINI_MODEL: Final = "gemini-2.5-flash"
GEMINI_BASE_URL: Final = "https://generativelanguage.googleapis.com/v1beta/openai/"
ROUTES_FILE_VAR: Final = "PURAS_RUNNER_MODEL_ROUTES_FILE"
PROVIDER_VARS: Final = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "GEMINI_API_KEY",
)


@dataclass(frozen=True)
class ModelSetup:
    """What the demo's stack gets so that the agentic examples reach a model."""

    description: str
    """One line for the demo's output: the provider, and how the slugs are routed."""
    routes: Mapping[str, Any] | None = None
    """A routes file's content (slug or ``"*"`` → fields), or ``None``: the shipped table."""
    environ: Mapping[str, str] = field(default_factory=dict)
    """The provider variables the runner gets (the stack passes them to the runner only)."""

    def stack_env(self, work: Path) -> dict[str, str]:
        """The stack's extra environment; writes the routes file into ``work``."""
        env = dict(self.environ)
        if self.routes is not None:
            path = work / "model_routes.json"
            path.write_text(json.dumps(self.routes, indent=1) + "\n", encoding="utf-8")
            env[ROUTES_FILE_VAR] = str(path)
        return env


def _every_slug_to(model: str, *, base_url: str | None, key_env: str | None) -> dict[str, Any]:
    # base_url and api_key_env are set even when None: the shipped Gemini routes carry
    # their own, which would otherwise win over the endpoint chosen here.
    return {
        "*": {
            "provider": "openai",
            "upstream_model": model,
            "base_url": base_url,
            "api_key_env": key_env,
        }
    }


def _is_openai(url: str) -> bool:
    return urlsplit(url).hostname == "api.openai.com"


def choose_models(environ: Mapping[str, str]) -> ModelSetup | None:
    """The provider the demo uses, first match wins: an Anthropic key (the examples'
    own slugs), an OpenAI-compatible base URL (a local server such as Ollama), an
    OpenAI key, a Gemini key. ``None``: no provider configured (print
    :data:`ENABLE_HINT`)."""
    env = {k: v for k, v in environ.items() if k in PROVIDER_VARS and v.strip()}
    model = environ.get("PURAS_DEMO_MODEL", "").strip()
    if "ANTHROPIC_API_KEY" in env or "ANTHROPIC_AUTH_TOKEN" in env:
        key = "ANTHROPIC_API_KEY" if "ANTHROPIC_API_KEY" in env else "ANTHROPIC_AUTH_TOKEN"
        where = " at ANTHROPIC_BASE_URL" if "ANTHROPIC_BASE_URL" in env else ""
        return ModelSetup(
            f"models: Anthropic{where} ({key}), the examples' own slugs "
            "(hello: claude/sonnet-4-6, caption: claude/sonnet-4-7)",
            environ=env,
        )
    base_url = env.get("OPENAI_BASE_URL")
    if base_url is not None and not _is_openai(base_url):
        model = model or DEFAULT_LOCAL_MODEL
        return ModelSetup(
            f"models: the OpenAI-compatible server at OPENAI_BASE_URL, every slug routed to "
            f"{model!r} (PURAS_DEMO_MODEL; caption needs a vision model, e.g. llama3.2-vision)",
            routes=_every_slug_to(model, base_url=base_url, key_env=None),
            environ=env,
        )
    if "OPENAI_API_KEY" in env:
        model = model or DEFAULT_OPENAI_MODEL
        return ModelSetup(
            f"models: OpenAI (OPENAI_API_KEY), every slug routed to {model!r} "
            "(PURAS_DEMO_MODEL to change)",
            routes=_every_slug_to(model, base_url=base_url, key_env=None),
            environ=env,
        )
    if "GEMINI_API_KEY" in env:
        model = model or DEFAULT_GEMINI_MODEL
        return ModelSetup(
            f"models: Gemini (GEMINI_API_KEY), every slug routed to {model!r} "
            "(PURAS_DEMO_MODEL to change)",
            routes=_every_slug_to(model, base_url=GEMINI_BASE_URL, key_env="GEMINI_API_KEY"),
            environ=env,
        )
    return None
