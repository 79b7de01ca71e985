"""The model routing table (A9) and the built-in tools' definitions (A2, A3, A8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import puras_runner
from puras_common.events.types import SkillRecord, ToolRecord
from puras_common.model_catalog import known_models
from puras_runner.domain.agent.routes import RoutesError, parse_routes
from puras_runner.domain.agent.tools import bash_timeout, download_target, offered_tools

DEFAULTS = json.loads(
    (Path(puras_runner.__file__).parent / "data" / "model_routes.json").read_text()
)


def test_the_shipped_table_routes_every_catalog_slug() -> None:
    routes = parse_routes(DEFAULTS)
    assert [r.slug for r in routes] == known_models()
    claude = routes.get("claude/sonnet-4-6")
    assert (claude.provider, claude.pdf, claude.vision) == ("anthropic", True, True)
    gpt = routes.get("gpt/4o")
    assert (gpt.provider, gpt.pdf) == ("openai", False)
    gemini = routes.get("gemini/2.5-flash")
    assert gemini.provider == "openai"
    assert gemini.api_key_env == "GEMINI_API_KEY"
    assert gemini.base_url is not None
    assert "generativelanguage" in gemini.base_url


def test_an_operator_override_replaces_fields_and_star_applies_to_every_slug() -> None:
    routes = parse_routes(
        DEFAULTS,
        {
            "*": {
                "provider": "openai",
                "base_url": "http://127.0.0.1:11434/v1",
                "upstream_model": "llama3.2",
            },
            "claude/haiku-4-5": {"upstream_model": "qwen2.5"},
        },
    )
    assert routes.get("claude/opus-4-7").upstream_model == "llama3.2"
    assert routes.get("claude/opus-4-7").provider == "openai"
    haiku = routes.get("claude/haiku-4-5")
    assert (haiku.upstream_model, haiku.base_url) == ("qwen2.5", "http://127.0.0.1:11434/v1")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"claude/nope": {"upstream_model": "x"}}, "not a model slug"),
        ({"gpt/4o": {"provider": "azure"}}, "provider must be one of"),
        ({"gpt/4o": {"colour": "red"}}, "unknown field(s) colour"),
        ({"gpt/4o": {"context_window": 0}}, "context_window must be a positive"),
    ],
)
def test_a_bad_override_names_the_slug_and_field(override: dict[str, object], message: str) -> None:
    with pytest.raises(RoutesError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_routes(DEFAULTS, override)


def _skill(**kw: object) -> SkillRecord:
    return SkillRecord(name="s", kind="agentic", entrypoint="SKILL.md", **kw)  # type: ignore[arg-type]


def test_offered_tools_follow_a2() -> None:
    names = [t.name for t in offered_tools(_skill())]
    assert names == [
        "bash",
        "file_read",
        "media",
        "web_search",
        "image_search",
        "web_fetch",
        "download_url",
    ]
    skill = _skill(
        disable_bash=True,
        output_schema={"type": "object", "properties": {"a": {"type": "string"}}},
        tools=[ToolRecord(name="lookup", entrypoint="tools/l.py:run", description="find")],
    )
    tools = offered_tools(skill)
    assert [t.name for t in tools][-2:] == ["lookup", "set_output"]
    assert "bash" not in [t.name for t in tools]
    assert tools[-1].input_schema == skill.output_schema


def test_bash_timeout_defaults_to_60_and_is_capped_at_600() -> None:
    assert bash_timeout({}) == 60
    assert bash_timeout({"timeout": 5}) == 5
    assert bash_timeout({"timeout": 10_000}) == 600


def test_a_download_path_ending_in_a_slash_takes_the_url_file_name() -> None:
    assert (
        download_target("https://x.test/a/report%20v2.pdf?x=1", "downloads/")
        == "downloads/report v2.pdf"
    )
    assert download_target("https://x.test/a/b.pdf", "data/c.pdf") == "data/c.pdf"
    with pytest.raises(ValueError, match="no file name"):
        download_target("https://x.test/", "downloads/")
