"""Attack tests. Those that need the whole stack use the shared stack fixtures (a test
module may define its own ``stack`` with other settings); the sandbox's own live in
``sandbox/`` with the runner's fixtures."""

from __future__ import annotations

from stack_fixtures import admin, api, stack

__all__ = ["admin", "api", "stack"]
