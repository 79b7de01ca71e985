"""Stream and subject names: declared once, used everywhere.

Subjects of the event log are ``ev.<project>.<aggregate>.<id>``; a project id and an
aggregate id never contain ``.``, ``*``, ``>`` or whitespace (they are UUIDs or key
prefixes), which :func:`event_subject` checks.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "AGG_DEPLOYMENTS",
    "AGG_JOB",
    "AGG_KEY",
    "AGG_LEDGER",
    "AGG_PROJECT",
    "CMDS_STREAM",
    "CMD_SCHEDULER_CANCEL",
    "CMD_SCHEDULER_SUBMIT",
    "EVENTS_STREAM",
    "HELD_STREAM",
    "WORK_STREAM",
    "aggregate_filter",
    "event_subject",
    "held_subject",
    "parse_event_subject",
    "work_subject",
]

EVENTS_STREAM: Final = "PURAS_EVENTS"
"""The event log: every fact, never deleted."""
CMDS_STREAM: Final = "PURAS_CMDS"
"""Work-queue of commands from the gateway to a service."""
WORK_STREAM: Final = "PURAS_WORK"
"""Work-queue of runnable jobs, one durable pull consumer shared by all runners."""
HELD_STREAM: Final = "PURAS_HELD"
"""Work-queue of jobs admitted while their project had no credit."""

AGG_PROJECT: Final = "project"
AGG_KEY: Final = "key"
AGG_LEDGER: Final = "ledger"
AGG_DEPLOYMENTS: Final = "deployments"
AGG_JOB: Final = "job"

CMD_SCHEDULER_SUBMIT: Final = "cmd.scheduler.submit"
"""Submit a job (gateway -> scheduler)."""
CMD_SCHEDULER_CANCEL: Final = "cmd.scheduler.cancel"
"""Cancel a job (gateway -> scheduler)."""

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def _token(kind: str, value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"{kind} {value!r} cannot be a subject token")
    return value


def event_subject(project_id: str, aggregate: str, aggregate_id: str) -> str:
    """``ev.<project>.<aggregate>.<id>``."""
    return (
        f"ev.{_token('project id', project_id)}.{aggregate}.{_token('aggregate id', aggregate_id)}"
    )


def aggregate_filter(aggregate: str, project_id: str = "*") -> str:
    """A stream filter for every aggregate of one kind (all projects by default)."""
    return f"ev.{project_id}.{aggregate}.*"


def parse_event_subject(subject: str) -> tuple[str, str, str]:
    """``(project, aggregate, id)`` of an event subject."""
    parts = subject.split(".")
    if len(parts) != 4 or parts[0] != "ev":
        raise ValueError(f"not an event subject: {subject!r}")
    return parts[1], parts[2], parts[3]


def work_subject(pool: str) -> str:
    """``work.<pool>``: where runnable jobs of a runner pool are queued."""
    return f"work.{_token('pool', pool)}"


def held_subject(project_id: str, job_id: str) -> str:
    """``held.<project>.<job>``: a job waiting for its project's credit."""
    return f"held.{_token('project id', project_id)}.{_token('job id', job_id)}"
