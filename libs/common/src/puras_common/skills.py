"""Which skill a job names, and whether its inputs fit: one lookup for every stage (K3).

A job is checked three times on its way to a process: at submit (the gateway answers a
404 or 422 at once), at admission (the scheduler, whose view of the deployments may be
newer: the deployment was deleted, the active one changed) and before it runs (the
runner, against the deployment the job was pinned to). The checks are the same
everywhere and live here; only the words differ, because each stage tells its reader
what happened in its own terms: the API caller can still fix the request, a job that
fails at admission or at the runner was already accepted.

Both the manifest's ``SkillSpec`` and the deployment event's wire type fit
:class:`Skill`, and any deployment record with an ``id`` and its ``skills`` by name fits
:class:`Deployment`: the gateway's and scheduler's views and the runner's bundle cache
hold different types of the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from puras_common.schemas import SchemaIssue, validation_problems

__all__ = [
    "Deployment",
    "InvalidInputs",
    "NoDeployment",
    "Skill",
    "SkillProblem",
    "Stage",
    "UnknownSkill",
    "check_inputs",
    "find_skill",
    "resolve",
]

Stage = Literal["submit", "admission", "run"]
"""Who checks: the gateway at submit, the scheduler at admission, the runner before the run."""


class Skill(Protocol):
    """What the checks need of a skill."""

    @property
    def name(self) -> str:
        """The skill's name (its folder under ``skills/``)."""
        ...

    @property
    def input_schema(self) -> Mapping[str, Any] | None:
        """JSON Schema the inputs must match; ``None``: any inputs."""
        ...


S_co = TypeVar("S_co", bound=Skill, covariant=True)
S = TypeVar("S", bound=Skill)


class Deployment(Protocol[S_co]):
    """What the lookup needs of a deployment."""

    @property
    def id(self) -> str:
        """The deployment's id."""
        ...

    @property
    def skills(self) -> Mapping[str, S_co]:
        """The deployment's skills by name."""
        ...


@dataclass(frozen=True, slots=True)
class NoDeployment:
    """The project has no active deployment to take the skill from."""

    skill: str
    """The skill the job asked for."""
    message: str
    """What went wrong, in the words of the stage that found it."""

    @property
    def available_skills(self) -> list[str]:
        """The skills the job could have named: none."""
        return []


@dataclass(frozen=True, slots=True)
class UnknownSkill:
    """The deployment has no skill of that name."""

    skill: str
    """The skill the job asked for."""
    deployment_id: str
    """The deployment that was searched."""
    available_skills: list[str]
    """The deployment's skills, sorted."""
    message: str
    """What went wrong, in the words of the stage that found it."""


@dataclass(frozen=True, slots=True)
class InvalidInputs:
    """The inputs do not match the skill's ``input_schema``."""

    skill: str
    """The skill whose schema refused the inputs."""
    problem: str
    """The validator's one message, e.g. ``inputs.text: 5 is not of type 'string'``."""
    message: str
    """What went wrong, in the words of the stage that found it."""
    problems: tuple[SchemaIssue, ...] = ()
    """Every violation (best match first), each with its path under ``inputs`` (Z8)."""


SkillProblem = NoDeployment | UnknownSkill | InvalidInputs
"""Why a job cannot run the skill it names."""


def _listing(names: list[str]) -> str:
    return ", ".join(names) if names else "(none)"


def _no_deployment(skill: str, at: Stage) -> NoDeployment:
    if at == "submit":
        message = (
            f"unknown skill {skill!r}: the project has no active deployment yet; "
            "push one with `puras push <project dir>` (POST /v1/deployments)"
        )
    else:
        # Past the gateway the submit was accepted: the deployment has gone since.
        message = (
            f"unknown skill {skill!r}: the project has no active deployment "
            "(it was deleted or never pushed)"
        )
    return NoDeployment(skill=skill, message=message)


def _unknown_skill(skill: str, deployment_id: str, names: list[str], at: Stage) -> UnknownSkill:
    if at == "submit":
        message = f"unknown skill {skill!r}; skills of the active deployment: {_listing(names)}"
    elif at == "admission":
        message = (
            f"unknown skill {skill!r} in the active deployment {deployment_id}; "
            f"its skills: {_listing(names)}"
        )
    else:
        # The runner looks in the deployment the job was pinned to, active or not.
        message = (
            f"skill {skill!r} is not in deployment {deployment_id}; its skills: {_listing(names)}"
        )
    return UnknownSkill(
        skill=skill, deployment_id=deployment_id, available_skills=names, message=message
    )


def find_skill(deployment: Deployment[S], name: str, *, at: Stage) -> S | UnknownSkill:
    """The deployment's skill called ``name``, or why there is none."""
    skill = deployment.skills.get(name)
    if skill is not None:
        return skill
    return _unknown_skill(name, deployment.id, sorted(deployment.skills), at)


def check_inputs(skill: Skill, inputs: object, *, at: Stage) -> InvalidInputs | None:
    """``None`` when ``inputs`` match the skill's ``input_schema`` (or it has none)."""
    if skill.input_schema is None:
        return None
    problems = validation_problems(skill.input_schema, inputs, root="inputs")
    if not problems:
        return None
    problem = f"{problems[0].path}: {problems[0].message}"
    # At submit the caller gets every violation at once (Z8); later stages record why a
    # job failed, where the first one says enough.
    message = (
        "; ".join(f"{i.path}: {i.message}" for i in problems)
        if at == "submit"
        else f"inputs do not match the skill's input_schema: {problem}"
    )
    return InvalidInputs(
        skill=skill.name, problem=problem, message=message, problems=tuple(problems)
    )


def resolve(
    deployment: Deployment[S] | None, name: str, inputs: object, *, at: Stage
) -> S | SkillProblem:
    """The skill a job names in ``deployment`` with its inputs checked, or the first problem.

    ``deployment`` is the project's active one at submit and admission (``None``: there
    is none) and the job's pinned one at the runner.
    """
    if deployment is None:
        return _no_deployment(name, at)
    skill = find_skill(deployment, name, at=at)
    if isinstance(skill, UnknownSkill):
        return skill
    invalid = check_inputs(skill, inputs, at=at)
    return skill if invalid is None else invalid
