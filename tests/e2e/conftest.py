"""End-to-end fixtures: the whole stack (nats-server, Postgres, five services) over HTTP.

One stack per test module (starting one takes a few seconds); a fresh project per test,
so tests never see each other's jobs. Each service runs as its own NATS identity and
Postgres role; ``stack.nats_url`` and ``stack.database_url`` are the privileged ones
(``ops``, the superuser) for tests that read the log or the tables directly, and a
module's stack fails at teardown if the server refused any service a permission. Short
ack wait and heartbeats let the lost-runner tests finish in seconds. The fixtures live
in ``tests/stack_fixtures.py`` (shared with the attack tests), helpers in
``tests/stackapi.py``.
"""

from __future__ import annotations

from stack_fixtures import admin, api, own_api, own_stack, stack

__all__ = ["admin", "api", "own_api", "own_stack", "stack"]
