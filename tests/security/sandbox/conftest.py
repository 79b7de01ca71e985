"""The sandbox's attack tests run real runners (in-process) against a real nats-server,
with the runner's integration fixtures."""

from __future__ import annotations

from runner_helpers import harness, start

__all__ = ["harness", "start"]
