"""Fixtures of the MCP server's unit tests: a private config file, no network."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the server keeps its config in this test (``PURASBACKEND_CONFIG``)."""
    path = tmp_path / "home" / ".purasbackend" / "config.json"
    monkeypatch.setenv("PURASBACKEND_CONFIG", str(path))
    return path
