"""Pure decisions about one delivery of a work item and the events it produces (J5, J11).

A work item is delivered up to ``max_attempts + 1`` times: deliveries ``1..max_attempts``
are real attempts (a runner that dies never acks, so JetStream redelivers after
``ack_wait``); the extra last delivery only exists to fail the job with ``runner lost``,
so no job stays ``running`` forever.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from puras_common.events.commands import RunJob
from puras_common.events.types import (
    TERMINAL_EVENT_TYPES,
    JobFailed,
    JobLogged,
    JobStarted,
    JobSucceeded,
)
from puras_runner.domain import errors
from puras_runner.domain.logs import LogBatch
from puras_runner.domain.outcome import Outcome, Succeeded

__all__ = [
    "ALLOW_PRIVATE_URLS_ENV",
    "RESERVED_ENV",
    "TERMINAL_EVENT_TYPES",
    "Delivery",
    "ProcessLimits",
    "classify_delivery",
    "cpu_limits",
    "job_env",
    "log_events",
    "process_limits",
    "runner_lost_event",
    "safe_token",
    "started_event",
    "terminal_event",
    "timeout_for",
]

_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,200}$")


class Delivery(enum.Enum):
    """What a delivery of a work item is for."""

    FIRST = "first"
    """The first attempt: run it."""
    RETRY = "retry"
    """A redelivery: run it unless an earlier attempt already ended the job."""
    END_LOST = "end_lost"
    """Past the last attempt: fail the job with ``runner lost`` unless it already ended."""


def classify_delivery(attempt: int, max_attempts: int) -> Delivery:
    if attempt > max_attempts:
        return Delivery.END_LOST
    if attempt > 1:
        return Delivery.RETRY
    return Delivery.FIRST


def safe_token(kind: str, value: str) -> str:
    """``value`` if it can be a path component; ids come from the log but are checked
    again because they name directories on this machine."""
    if not _SAFE.match(value):
        raise ValueError(f"{kind} {value!r} cannot be used in a path")
    return value


# -- events --------------------------------------------------------------------------


def started_event(job: RunJob, attempt: int, runner_id: str, now: datetime) -> JobStarted:
    return JobStarted(
        attempt=attempt, deployment_id=job.deployment_id, runner_id=runner_id, started_at=now
    )


def log_events(batches: list[LogBatch], *, truncated: bool) -> list[JobLogged]:
    """One event per batch; with ``truncated`` the last one says so (an empty event is
    added when nothing is left to carry the flag)."""
    events = [JobLogged(stream=b.stream, lines=b.lines) for b in batches if b.lines]
    if truncated:
        if events:
            last = events[-1]
            events[-1] = JobLogged(stream=last.stream, lines=last.lines, truncated=True)
        else:
            events.append(JobLogged(stream="stderr", lines=[], truncated=True))
    return events


def terminal_event(
    outcome: Outcome, *, attempt: int, started_at: datetime, finished_at: datetime
) -> JobSucceeded | JobFailed:
    """How the attempt ended; the rest of the job is on its earlier events."""
    if isinstance(outcome, Succeeded):
        return JobSucceeded(
            result=outcome.result, attempt=attempt, started_at=started_at, finished_at=finished_at
        )
    return JobFailed(
        error=outcome.error, attempt=attempt, started_at=started_at, finished_at=finished_at
    )


def runner_lost_event(
    *, max_attempts: int, started_at: datetime | None, now: datetime
) -> JobFailed:
    """The job's last attempt never finished: fail it (J11)."""
    return JobFailed(
        error=errors.runner_lost_error(),
        attempt=max_attempts,
        started_at=started_at,
        finished_at=now,
    )


# -- the process's environment and limits ----------------------------------------------


RESERVED_ENV: Final = frozenset(
    {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "PYTHONPATH",
        "PURAS_JOB_ID",
        "PURAS_PROJECT_ID",
        "PURAS_SKILL",
        "PURAS_DEPLOYMENT_ID",
        "PURAS_DEPLOYMENT_ROOT",
        "PURAS_ATTEMPT",
        "PURAS_ALLOW_PRIVATE_URLS",
    }
)
"""Variables the runner sets; a project secret of the same name does not replace them."""

ALLOW_PRIVATE_URLS_ENV: Final = "PURAS_ALLOW_PRIVATE_URLS"
"""Where the SDK's own fetch reads the non-public networks it may reach (``puras._fetch``)."""


def job_env(
    job: RunJob,
    *,
    attempt: int,
    venv_bin: str,
    workdir: str,
    bundle_root: str,
    secrets: Mapping[str, str],
    tmpdir: str | None = None,
    allow_networks: Sequence[str] = (),
) -> dict[str, str]:
    """The complete environment of a job's process: nothing inherited (ARCHITECTURE §7).

    ``allow_networks`` (the operator's ``egress_allow_networks``) tells the SDK's fetch
    which non-public networks it may reach, so a job that fetches without the egress
    proxy (``sandbox=off``) follows the rule the proxy applies to sandboxed jobs.
    """
    env = {k: v for k, v in secrets.items() if k not in RESERVED_ENV}
    env.update(
        PATH=f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
        HOME=workdir,
        TMPDIR=tmpdir or f"{workdir}/tmp",
        LANG="C.UTF-8",
        PYTHONPATH=bundle_root,
        PURAS_JOB_ID=job.job_id,
        PURAS_PROJECT_ID=job.project_id,
        PURAS_SKILL=job.skill,
        PURAS_DEPLOYMENT_ID=job.deployment_id,
        PURAS_DEPLOYMENT_ROOT=bundle_root,
        PURAS_ATTEMPT=str(attempt),
    )
    if allow_networks:
        env[ALLOW_PRIVATE_URLS_ENV] = ",".join(allow_networks)
    return env


def timeout_for(job: RunJob, skill_timeout_s: int | None, default_timeout_s: float) -> float:
    """The wall-clock limit: the work item's, else the skill's, else the runner's default."""
    for value in (job.timeout_seconds, skill_timeout_s):
        if value is not None and value > 0:
            return float(value)
    return float(default_timeout_s)


@dataclass(frozen=True, slots=True)
class ProcessLimits:
    """rlimits of every job's process (field names are what ``template_main`` reads)."""

    memory_bytes: int
    """RLIMIT_AS, from the memory limit."""
    file_size_bytes: int
    """RLIMIT_FSIZE."""
    open_files: int
    """RLIMIT_NOFILE."""
    processes: int
    """RLIMIT_NPROC: generous, as it counts every process of the uid, not just the job's."""


FILE_SIZE_LIMIT: Final = 1 << 30
OPEN_FILES_LIMIT: Final = 1024
PROCESSES_LIMIT: Final = 4096
CPU_GRACE_S: Final = 5


def process_limits(*, memory_limit_mb: int) -> ProcessLimits:
    """Address space from the memory limit, 1 GiB files, 1024 open files, 4096 processes
    (no core dumps either: the template always sets RLIMIT_CORE to 0)."""
    return ProcessLimits(
        memory_bytes=memory_limit_mb * 1024 * 1024,
        file_size_bytes=FILE_SIZE_LIMIT,
        open_files=OPEN_FILES_LIMIT,
        processes=PROCESSES_LIMIT,
    )


def cpu_limits(timeout_s: float) -> tuple[int, int]:
    """RLIMIT_CPU (soft: SIGXCPU, hard: SIGKILL) a little above the wall-clock limit: the
    wall clock fires first, the CPU limit backs it up should the runner stall."""
    soft = int(timeout_s) + CPU_GRACE_S
    return soft, soft + CPU_GRACE_S
