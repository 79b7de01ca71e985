"""Stream and subject names: declared once, used everywhere (event ids and durable
consumer names are in :mod:`puras_common.events.ids`).

Subjects of the event log are ``ev.<project>.<aggregate>.<id>``; live frames of a job
(``live.<project>.job.<id>``, Z5) are plain NATS subjects that no stream captures. A
project id and an
aggregate id never contain ``.``, ``*``, ``>`` or whitespace (they are UUIDs or key
prefixes), which :func:`event_subject` checks.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "AGG_DEPLOYMENTS",
    "AGG_DRIVE",
    "AGG_FEEDBACK",
    "AGG_JOB",
    "AGG_KEY",
    "AGG_LEDGER",
    "AGG_PROJECT",
    "AGG_SECRET",
    "BUILDS_DURABLE",
    "BUILDS_STREAM",
    "CMDS_STREAM",
    "CMD_BILLING_FILTER",
    "CMD_BILLING_GRANT",
    "CMD_GATEWAY_BUILT",
    "CMD_GATEWAY_FILTER",
    "CMD_SCHEDULER_CANCEL",
    "CMD_SCHEDULER_FILTER",
    "CMD_SCHEDULER_SUBMIT",
    "EVENTS_STREAM",
    "GATEWAY_BUILDS_DURABLE",
    "HELD_FILTER",
    "HELD_STREAM",
    "LIVE_JOB_FILTER",
    "RUNNER_MEDIA_FILTER",
    "WORK_STREAM",
    "aggregate_filter",
    "build_subject",
    "built_subject",
    "event_aggregate",
    "event_subject",
    "held_filter",
    "held_project",
    "held_subject",
    "live_subject",
    "parse_event_subject",
    "runner_media_subject",
    "submit_filter",
    "submit_subject",
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
BUILDS_STREAM: Final = "PURAS_BUILDS"
"""Work-queue of deployments' venv builds (Z7), one durable shared by all runners."""
BUILDS_DURABLE: Final = "runners-builds"
"""The runners' shared durable on ``PURAS_BUILDS``."""
GATEWAY_BUILDS_DURABLE: Final = "gateway-builds"
"""The gateways' shared durable on ``PURAS_CMDS``: the build outcomes runners report."""

AGG_PROJECT: Final = "project"
AGG_KEY: Final = "key"
AGG_LEDGER: Final = "ledger"
AGG_DEPLOYMENTS: Final = "deployments"
AGG_JOB: Final = "job"
AGG_DRIVE: Final = "drive"
"""A project's drive: one aggregate per project, its id the project id."""
AGG_SECRET: Final = "secret"  # noqa: S105 - an aggregate kind, not a credential
"""A project secret: one aggregate per name (a valid subject token as it is), so the last
event of ``ev.<project>.secret.*`` per subject is the project's set of secrets."""
AGG_FEEDBACK: Final = "feedback"
"""Feedback on a job's result (J9): one aggregate per job, its id the job id."""

CMD_SCHEDULER_SUBMIT: Final = "cmd.scheduler.submit"
"""Submit a job (gateway -> scheduler): the prefix of :func:`submit_subject`."""
CMD_SCHEDULER_CANCEL: Final = "cmd.scheduler.cancel"
"""Cancel a job (gateway -> scheduler)."""
CMD_SCHEDULER_FILTER: Final = "cmd.scheduler.>"
"""Every command addressed to the scheduler."""
HELD_FILTER: Final = "held.>"
"""Every held job of every project."""
CMD_BILLING_GRANT: Final = "cmd.billing.grant"
"""Grant a project credit (gateway -> billing, the ledger's one writer)."""
CMD_BILLING_FILTER: Final = "cmd.billing.>"
"""Every command addressed to billing."""
CMD_GATEWAY_BUILT: Final = "cmd.gateway.built"
"""A push-time build's outcome (runner -> gateway, which records it): the prefix of
:func:`built_subject`."""
CMD_GATEWAY_FILTER: Final = "cmd.gateway.>"
"""Every message addressed to the gateways."""
LIVE_JOB_FILTER: Final = "live.*.job.*"
"""Every job's live frames (runner -> gateway), outside every stream: never stored."""

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


def event_aggregate(subject: str) -> str:
    """The aggregate kind (``job``, ``deployments``, ...) of an event subject."""
    return parse_event_subject(subject)[1]


def submit_subject(project_id: str, job_id: str) -> str:
    """``cmd.scheduler.submit.<project>.<job>``: one subject per job, so that any gateway
    can find a submit the scheduler has not admitted yet (a read right after a submit)."""
    return f"{CMD_SCHEDULER_SUBMIT}.{_token('project id', project_id)}.{_token('job id', job_id)}"


def submit_filter(project_id: str = "*") -> str:
    """``cmd.scheduler.submit.<project>.*``: the submits of one project (all by default)."""
    return f"{CMD_SCHEDULER_SUBMIT}.{project_id}.*"


def build_subject(project_id: str) -> str:
    """``build.<project>``: where a deployment's venv build is requested."""
    return f"build.{_token('project', project_id)}"


def built_subject(project_id: str) -> str:
    """``cmd.gateway.built.<project>``: where a runner reports a build's outcome."""
    return f"{CMD_GATEWAY_BUILT}.{_token('project', project_id)}"


def work_subject(pool: str) -> str:
    """``work.<pool>``: where runnable jobs of a runner pool are queued."""
    return f"work.{_token('pool', pool)}"


def live_subject(project_id: str, job_id: str) -> str:
    """``live.<project>.job.<job>``: frames for the clients attached to a job right now
    (the model's text as it is generated, Z5). Core NATS only: no stream's subjects match
    it, so nothing sent here is stored, and a frame nobody is listening for is gone."""
    return f"live.{_token('project id', project_id)}.{AGG_JOB}.{_token('job id', job_id)}"


def held_subject(project_id: str, job_id: str) -> str:
    """``held.<project>.<job>``: a job waiting for its project's credit."""
    return f"held.{_token('project id', project_id)}.{_token('job id', job_id)}"


def held_filter(project_id: str) -> str:
    """``held.<project>.*``: every held job of one project."""
    return f"held.{_token('project id', project_id)}.*"


def held_project(subject: str) -> str:
    """The project of a ``held.<project>.<job>`` subject."""
    parts = subject.split(".")
    if len(parts) != 3 or parts[0] != "held":
        raise ValueError(f"not a held subject: {subject!r}")
    return parts[1]


RUNNER_MEDIA_FILTER: Final = "rpc.runner.*.media"
"""Media calls of running jobs (gateway -> the runner running the job; request-reply)."""


def runner_media_subject(runner: str) -> str:
    """``rpc.runner.<runner>.media``: where the runner that minted a job token takes that
    job's media calls (plain NATS request-reply: a call is answered or fails, it is not
    kept)."""
    if not _TOKEN.match(runner):
        raise ValueError(f"runner id {runner!r} cannot be a subject token")
    return f"rpc.runner.{runner}.media"
