"""Engines: how one kind of skill runs (SPEC: skill kinds).

The handler finds the job's deployment and skill, then hands the attempt to the engine
of the skill's kind. An engine gets the shared pieces (the deployment on disk, the
:class:`~puras_runner.app.attempt.Attempt` to record through) and returns the outcome;
it leaves the terminal event to the handler.

:class:`DeterministicEngine` runs a ``file.py:function`` skill in a process of its own
per job (warm templates, ARCHITECTURE §5a), through the :class:`ProcessEngine` port.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from puras_common.events.types import SkillRecord
from puras_common.schemas import validate_instance
from puras_runner.app.attempt import Attempt
from puras_runner.app.ports import Deployment, ProcessEngine, SecretsProvider
from puras_runner.domain.errors import PreparationFailed
from puras_runner.domain.jobs import cpu_limits, timeout_for
from puras_runner.domain.outcome import Failed, Outcome, RunLimits, decide_outcome
from puras_runner.domain.secrets import SecretsUnavailable

__all__ = ["DeterministicEngine", "Engine", "ProcessConfig"]


class Engine(Protocol):
    async def run(self, attempt: Attempt, deployment: Deployment, skill: SkillRecord) -> Outcome:
        """Run the attempt's job to an outcome. Calls ``attempt.begin()`` once the job is
        under way, stops when the attempt says so (``AttemptStopped``), and leaves what
        must be torn down to ``attempt.after``."""
        ...


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    """Limits of a job's process, for its timeout and for the errors that name them."""

    default_timeout_s: float
    memory_limit_mb: int
    max_result_bytes: int
    max_processes: int = 0
    """The per-job process limit the runner's cgroups enforce (0: none), for errors."""


def _check_output(schema: Mapping[str, Any], instance: object) -> str | None:
    problem: str | None = validate_instance(schema, instance, root="result")
    return problem


class DeterministicEngine:
    """A deterministic skill's function, called in the job's own process."""

    def __init__(
        self,
        processes: ProcessEngine[Any],
        *,
        secrets: SecretsProvider,
        config: ProcessConfig,
    ) -> None:
        self.processes = processes
        self.secrets = secrets
        self.config = config

    async def run(self, attempt: Attempt, deployment: Deployment, skill: SkillRecord) -> Outcome:
        job, cfg = attempt.job, self.config
        # A skill already prepared is a dictionary look-up: no task, no waiting.
        prepared = self.processes.lookup(deployment.id, skill.name)
        if prepared is None:
            try:
                prepared = await attempt.unless_stopped(
                    self.processes.prepare(deployment, skill, job)
                )
            except PreparationFailed as exc:
                return Failed(str(exc))
        timeout_s = timeout_for(job, skill.timeout_seconds, cfg.default_timeout_s)
        try:
            secrets = await self.secrets.secrets_for(job.project_id)
        except SecretsUnavailable as exc:
            return Failed(str(exc))
        # The job's token and the API's address ride with the secrets (and are masked
        # like them in its logs).
        env = {**secrets, **attempt.job_env} if attempt.job_env else secrets
        if env:
            attempt.mask(env.values())
        try:
            execution = await self.processes.start(
                prepared,
                job,
                attempt=attempt.number,
                timeout_s=timeout_s,
                secrets=env,
                on_output=attempt.on_output,
            )
        except PreparationFailed as exc:
            return Failed(str(exc))
        attempt.after(execution.close)
        # The job runs from here on; its start is recorded meanwhile (off its path).
        attempt.begin()
        # A stop (newer attempt, job ended elsewhere, a publish failing) ends the process;
        # wait() then returns at once.
        attempt.on_stop(execution.kill)
        try:
            facts = await execution.wait(timeout_s)
        except asyncio.CancelledError:
            execution.kill()
            raise
        attempt.raise_if_stopped()
        limits = RunLimits(
            timeout_s=timeout_s,
            memory_limit_mb=cfg.memory_limit_mb,
            max_result_bytes=cfg.max_result_bytes,
            cpu_limit_s=cpu_limits(timeout_s)[0],
            max_processes=cfg.max_processes,
        )
        return decide_outcome(
            facts, limits, output_schema=skill.output_schema, check_schema=_check_output
        )
