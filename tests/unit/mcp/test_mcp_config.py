"""The MCP server's config file: location, mode 600, validation, re-read on every call."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult

from purasbackend_mcp.config import (
    Config,
    ConfigError,
    config_path,
    key_prefix,
    load_config,
    normalise_api_base,
    save_config,
    validate_api_key,
)
from purasbackend_mcp.server import create_server

KEY = "puras_live_AbCdEfGh.SecretSecretSecretSecretSecre32"


def test_the_default_path_is_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PURASBACKEND_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_path() == tmp_path / ".purasbackend" / "config.json"


def test_the_env_var_points_elsewhere(config_file: Path) -> None:
    assert config_path() == config_file


def test_save_writes_mode_600_in_a_private_folder(config_file: Path) -> None:
    written = save_config(Config("http://127.0.0.1:8080", KEY, "p1"))
    assert written == config_file
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_file.parent.stat().st_mode) == 0o700
    assert json.loads(config_file.read_text()) == {
        "api_base": "http://127.0.0.1:8080",
        "api_key": KEY,
        "project_id": "p1",
    }
    assert not [p for p in config_file.parent.iterdir() if p.name != "config.json"]


def test_save_tightens_a_file_that_was_wider(config_file: Path) -> None:
    config_file.parent.mkdir(parents=True)
    config_file.write_text("{}")
    os.chmod(config_file, 0o644)
    save_config(Config("http://h", KEY))
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


def test_save_is_not_widened_by_the_umask(config_file: Path) -> None:
    old = os.umask(0)
    try:
        save_config(Config("http://h", KEY))
    finally:
        os.umask(old)
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600


def test_load_round_trips_and_a_missing_file_is_none(config_file: Path) -> None:
    assert load_config() is None
    save_config(Config("http://h:1", KEY, "p"))
    assert load_config() == Config("http://h:1", KEY, "p")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"api_key": "k"}', "has no api_base"),
        ('{"api_base": "http://h"}', "has no api_key"),
        ('{"api_base": "http://h", "api_key": "k", "project_id": 3}', "project_id"),
    ],
)
def test_a_broken_file_says_what_to_do(config_file: Path, content: str, message: str) -> None:
    config_file.parent.mkdir(parents=True)
    config_file.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_config()
    assert str(config_file) in str(info.value)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "empty"),
        ("admin-token-123", "starting with puras_live_"),
        ("puras_live_AbCdEfGhSecretSecret", "no dot"),
        ("puras_live_AbCd.Sec ret", "not shaped like"),
        ("puras_live_.secret", "not shaped like"),
    ],
)
def test_bad_keys_are_refused_with_a_reason(key: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_api_key(key)


def test_key_prefix_never_includes_the_secret() -> None:
    assert key_prefix(KEY) == "puras_live_AbCdEfGh"
    assert key_prefix("puras_live_nodot") is None
    assert key_prefix("garbage.with.dots") is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        (" https://api.example.com/ ", "https://api.example.com"),
        ("http://h:1/v1", "http://h:1"),
        ("https://h/puras/", "https://h/puras"),
    ],
)
def test_api_base_is_normalised(given: str, expected: str) -> None:
    assert normalise_api_base(given) == expected


@pytest.mark.parametrize("bad", ["127.0.0.1:8080", "ftp://h", "http://", "http://h/?x=1", ""])
def test_bad_api_bases_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="api_base"):
        normalise_api_base(bad)


async def show_config(server: MCPServer) -> tuple[dict[str, Any], str]:
    """The tool's structured answer and its text content."""
    result = await server.call_tool("show_config", {})
    assert isinstance(result, CallToolResult)
    assert result.structured_content is not None
    text = "".join(getattr(c, "text", "") for c in result.content)
    return result.structured_content, text


async def test_show_config_gives_the_prefix_only_and_rereads_the_file(config_file: Path) -> None:
    server = create_server()
    out, _ = await show_config(server)
    assert out["configured"] is False
    assert out["config_path"] == str(config_file)

    save_config(Config("http://127.0.0.1:8080", KEY, "proj"))
    out, text = await show_config(server)
    assert out == {
        "configured": True,
        "config_path": str(config_file),
        "api_base": "http://127.0.0.1:8080",
        "api_key_prefix": "puras_live_AbCdEfGh",
        "project_id": "proj",
    }
    assert "SecretSecret" not in json.dumps(out) + text

    # Edited behind the server's back: the next call sees it.
    save_config(Config("http://other:9", "puras_live_Zz99.AnotherSecretValue0", ""))
    out, _ = await show_config(server)
    assert (out["api_base"], out["api_key_prefix"]) == ("http://other:9", "puras_live_Zz99")


async def test_show_config_reports_a_broken_file_instead_of_failing(config_file: Path) -> None:
    config_file.parent.mkdir(parents=True)
    config_file.write_text('{"api_base": "http://h", "api_key": "hand-edited-no-dot"}')
    out, _ = await show_config(create_server())
    assert out["configured"] is True
    assert out["api_key_prefix"] is None
    assert "configure" in out["problem"]
    assert "hand-edited" not in json.dumps(out)
