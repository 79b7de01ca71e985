"""Scheduler settings (env prefix ``PURAS_SCHEDULER_``, falling back to ``PURAS_``)."""

from __future__ import annotations

from typing import ClassVar

from puras_common.settings import ServiceSettings

__all__ = ["SchedulerSettings"]


class SchedulerSettings(ServiceSettings):
    service: ClassVar[str] = "scheduler"

    pool: str = "default"
    """Runner pool that work is dispatched to (``work.<pool>``)."""
    batch: int = 256
    """Commands in flight at once (pulled and handled together)."""
    cmd_ack_wait_s: float = 30.0
    """A command not acked this long (a scheduler died handling it) is redelivered."""
    cmd_max_deliver: int = 20
    """Deliveries of a command before JetStream gives up on it."""
    view_wait_s: float = 5.0
    """How long a submit waits for this scheduler's views to reach the gateway's."""
