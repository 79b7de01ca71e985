"""Where the CLI takes its API base and credentials from: environment first, then dev.env."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from puras_cli.config import (
    find_dev_env,
    format_env_file,
    load_config,
    parse_env_file,
    write_private_file,
)


def _dev_env(root: Path, text: str) -> Path:
    path = root / ".puras" / "dev.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_parse_env_file_reads_shell_style_lines() -> None:
    text = """
# a comment
PURAS_API_BASE='http://127.0.0.1:8123'
export PURAS_API_KEY="puras_live_abcd.efgh"
PURAS_ADMIN_TOKEN = tok=en
not a line
"""
    assert parse_env_file(text) == {
        "PURAS_API_BASE": "http://127.0.0.1:8123",
        "PURAS_API_KEY": "puras_live_abcd.efgh",
        "PURAS_ADMIN_TOKEN": "tok=en",
    }


def test_format_env_file_round_trips_and_refuses_quotes() -> None:
    values = {"A": "x y", "B": "puras_live_a.b", "C": ""}
    assert parse_env_file(format_env_file(values)) == values
    with pytest.raises(ValueError, match="quote"):
        format_env_file({"A": "it's"})


def test_the_env_file_exports_every_value_to_what_a_shell_runs(tmp_path: Path) -> None:
    import subprocess

    text = format_env_file({"PURAS_API_BASE": "http://127.0.0.1:1", "X": "a b"}, header="hi\nyo")
    assert text.splitlines()[:2] == ["# hi", "# yo"]
    env_file = tmp_path / "dev.env"
    env_file.write_text(text)
    out = subprocess.run(
        ["bash", "-c", f". {env_file} && env"], capture_output=True, text=True, check=True, env={}
    ).stdout
    assert "PURAS_API_BASE=http://127.0.0.1:1" in out.splitlines()
    assert "X=a b" in out.splitlines()
    assert parse_env_file(text) == {"PURAS_API_BASE": "http://127.0.0.1:1", "X": "a b"}


def test_dev_env_is_found_in_a_parent_directory(tmp_path: Path) -> None:
    found = _dev_env(tmp_path, "PURAS_API_BASE=http://x\n")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_dev_env(deep) == found
    assert find_dev_env(tmp_path / "a") == found


def test_no_dev_env_anywhere(tmp_path: Path) -> None:
    cfg = load_config({}, tmp_path)
    assert cfg.api_base is None
    assert cfg.api_key is None
    assert cfg.dev_env is None


def test_values_come_from_dev_env_when_the_environment_lacks_them(tmp_path: Path) -> None:
    path = _dev_env(
        tmp_path,
        "PURAS_API_BASE='http://127.0.0.1:9000/'\nPURAS_API_KEY='k'\n"
        "PURAS_ADMIN_TOKEN='adm'\nPURAS_PROJECT_ID='p1'\n",
    )
    cfg = load_config({}, tmp_path)
    assert cfg.api_base == "http://127.0.0.1:9000"  # trailing slash dropped
    assert (cfg.api_key, cfg.admin_token, cfg.project_id) == ("k", "adm", "p1")
    assert cfg.dev_env == path


def test_environment_wins_over_dev_env_value_by_value(tmp_path: Path) -> None:
    _dev_env(tmp_path, "PURAS_API_BASE='http://file'\nPURAS_API_KEY='file-key'\n")
    cfg = load_config({"PURAS_API_BASE": "http://env", "PURAS_ADMIN_TOKEN": "env-tok"}, tmp_path)
    assert cfg.api_base == "http://env"
    assert cfg.api_key == "file-key"  # not in the environment: from the file
    assert cfg.admin_token == "env-tok"


def test_empty_environment_value_does_not_hide_the_file(tmp_path: Path) -> None:
    _dev_env(tmp_path, "PURAS_API_KEY='file-key'\n")
    assert load_config({"PURAS_API_KEY": ""}, tmp_path).api_key == "file-key"


def test_write_private_file_is_owner_only_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "dev.env"
    write_private_file(target, "A='1'\n")
    write_private_file(target, "A='2'\n")
    assert target.read_text() == "A='2'\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["dev.env"]  # no temp file left
