"""The one skill lookup and input check that submit, admission and the runner share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from puras_common.manifest.spec import SkillSpec
from puras_common.skills import (
    InvalidInputs,
    NoDeployment,
    Skill,
    Stage,
    UnknownSkill,
    check_inputs,
    find_skill,
    resolve,
)

ECHO = SkillSpec(
    name="echo",
    kind="deterministic",
    entrypoint="main.py:run",
    input_schema={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
)
FREE = SkillSpec(name="free", kind="deterministic", entrypoint="main.py:run")


@dataclass(frozen=True)
class Dep:
    id: str
    skills: dict[str, Skill] = field(default_factory=dict)


@dataclass(frozen=True)
class WireSkill:
    """A skill record of another type than the manifest's: only the fields checked."""

    name: str
    input_schema: dict[str, Any] | None


DEP = Dep("d1", {"echo": ECHO, "free": FREE})


@pytest.mark.parametrize("at", ["submit", "admission", "run"])
def test_a_known_skill_with_fitting_inputs_is_returned_itself(at: Stage) -> None:
    assert resolve(DEP, "echo", {"text": "hi"}, at=at) is ECHO
    assert find_skill(DEP, "free", at=at) is FREE


def test_a_skill_without_an_input_schema_takes_any_inputs() -> None:
    assert resolve(DEP, "free", ["not", "an", "object"], at="submit") is FREE
    assert check_inputs(FREE, 5, at="admission") is None


def test_no_deployment_is_told_to_push_at_submit_and_as_gone_later() -> None:
    at_submit = resolve(None, "echo", {}, at="submit")
    assert isinstance(at_submit, NoDeployment)
    assert at_submit.message == (
        "unknown skill 'echo': the project has no active deployment yet; "
        "push one with `puras push <project dir>` (POST /v1/deployments)"
    )
    assert at_submit.available_skills == []
    later = resolve(None, "echo", {}, at="admission")
    assert isinstance(later, NoDeployment)
    assert later.message == (
        "unknown skill 'echo': the project has no active deployment "
        "(it was deleted or never pushed)"
    )


def test_an_unknown_skill_names_the_deployments_skills_in_each_stages_words() -> None:
    words: dict[Stage, str] = {
        "submit": "unknown skill 'nope'; skills of the active deployment: echo, free",
        "admission": "unknown skill 'nope' in the active deployment d1; its skills: echo, free",
        "run": "skill 'nope' is not in deployment d1; its skills: echo, free",
    }
    for at, message in words.items():
        found = resolve(DEP, "nope", {}, at=at)
        assert isinstance(found, UnknownSkill)
        assert (found.message, found.available_skills, found.deployment_id) == (
            message,
            ["echo", "free"],
            "d1",
        )


def test_an_empty_deployment_says_so() -> None:
    found = find_skill(Dep("d2"), "echo", at="submit")
    assert isinstance(found, UnknownSkill)
    assert found.message.endswith("skills of the active deployment: (none)")


def test_inputs_that_miss_the_schema_carry_the_validators_message() -> None:
    at_submit = resolve(DEP, "echo", {"text": 5}, at="submit")
    assert isinstance(at_submit, InvalidInputs)
    assert at_submit.message == at_submit.problem == "inputs.text: 5 is not of type 'string'"
    later = resolve(DEP, "echo", {}, at="admission")
    assert isinstance(later, InvalidInputs)
    assert later.message == (
        "inputs do not match the skill's input_schema: inputs: 'text' is a required property"
    )


def test_any_record_with_a_name_and_an_input_schema_is_a_skill() -> None:
    wire = WireSkill(name="echo", input_schema={"type": "object", "required": ["text"]})
    dep = Dep("d3", {"echo": wire})
    assert resolve(dep, "echo", {"text": "x"}, at="submit") is wire
    found = resolve(dep, "echo", {}, at="submit")
    assert isinstance(found, InvalidInputs)
    assert found.skill == "echo"


FORM = SkillSpec(
    name="form",
    kind="deterministic",
    entrypoint="main.py:run",
    input_schema={
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 3},
            "count": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["title", "count", "email"],
    },
)


def test_a_submit_hears_of_every_violation_each_with_its_path() -> None:
    dep = Dep("d2", {"form": FORM})
    got = resolve(dep, "form", {"title": "toolong", "count": 0, "tags": ["a", 7]}, at="submit")
    assert isinstance(got, InvalidInputs)
    found = {(i.path, i.message) for i in got.problems}
    assert found == {
        ("inputs", "'email' is a required property"),
        ("inputs.title", "'toolong' is too long"),
        ("inputs.count", "0 is less than the minimum of 1"),
        ("inputs.tags[1]", "7 is not of type 'string'"),
    }
    # The best match leads (what `problem` names), and the message lists them all.
    assert got.problem == f"{got.problems[0].path}: {got.problems[0].message}"
    for path, message in found:
        assert f"{path}: {message}" in got.message
    # Later stages record the one reason a job failed.
    later = resolve(dep, "form", {"title": "x"}, at="run")
    assert isinstance(later, InvalidInputs)
    assert later.message.startswith("inputs do not match the skill's input_schema: inputs: ")
    assert ";" not in later.message
