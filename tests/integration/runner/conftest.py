"""Fixtures of the runner's integration tests (they and the helpers live in
``tests/runner_helpers.py``, shared with the sandbox's attack tests)."""

from __future__ import annotations

from runner_helpers import harness, start

__all__ = ["harness", "start"]
