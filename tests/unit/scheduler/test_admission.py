from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from puras_common.events import BundleRef, Envelope, JobFailed, JobQueued, JobRecord, SkillRecord
from puras_common.events.commands import SubmitJob
from puras_common.views.deployments import DeploymentInfo, ProjectDeployments
from puras_common.views.jobs import apply_job_event
from puras_scheduler.domain.admission import Admission, admit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)


def project(skills: dict[str, SkillRecord] | None) -> ProjectDeployments:
    pd = ProjectDeployments()
    if skills is not None:
        pd.deployments["d1"] = DeploymentInfo(
            id="d1",
            project_id="p",
            notes="",
            bundle=BundleRef(key="k", sha256="h", size=1),
            requirements_sha256="r",
            skills=skills,
            created_at=T0,
        )
        pd.active_id = "d1"
    return pd


ECHO = SkillRecord(
    name="echo",
    kind="deterministic",
    entrypoint="main.py:run",
    timeout_seconds=7,
    input_schema={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
)


def folded(a: Admission) -> JobRecord:
    """The job as the events the admission records show it."""
    job: JobRecord | None = None
    for ev, event_id in a.events:
        env = Envelope(
            id=event_id, type=type(ev).type, v=1, at=T1, project_id="p", aggregate_id="j"
        )
        job = apply_job_event(job, env, ev)
    assert job is not None
    return job


def cmd(inputs: dict[str, object], skill: str = "echo") -> SubmitJob:
    return SubmitJob(job_id="j", project_id="p", skill=skill, inputs=inputs, submitted_at=T0)


def test_funded_valid_job_is_dispatched_with_its_pinned_deployment() -> None:
    a = admit(cmd({"text": "hi"}), project({"echo": ECHO}), 1, T1)
    assert a.outcome == "dispatch"
    assert [type(e) for e, _ in a.events] == [JobQueued]
    assert a.events[0][1] == "j:queued"
    assert a.work is not None
    assert (a.work.deployment_id, a.work.bundle_key, a.work.timeout_seconds) == ("d1", "k", 7)


def test_the_cost_cap_is_the_submits_else_the_skills() -> None:
    capped = msgspec.structs.replace(ECHO, max_cost_micros=900)
    deps = project({"echo": capped})
    own = admit(cmd({"text": "hi"}), deps, 10, T1)
    assert own.work is not None
    assert own.work.max_cost_micros == 900
    asked = msgspec.structs.replace(cmd({"text": "hi"}), max_cost_micros=50)
    chosen = admit(asked, deps, 10, T1)
    assert chosen.work is not None
    assert chosen.work.max_cost_micros == 50
    free = admit(cmd({"text": "hi"}), project({"echo": ECHO}), 10, T1)
    assert free.work is not None
    assert free.work.max_cost_micros is None


def test_no_credit_holds_the_job() -> None:
    a = admit(cmd({"text": "hi"}), project({"echo": ECHO}), 0, T1)
    assert a.outcome == "hold"
    queued = a.events[0][0]
    assert isinstance(queued, JobQueued)
    assert queued.held


def test_schema_violation_fails_without_running() -> None:
    a = admit(cmd({"text": 5}), project({"echo": ECHO}), 10, T1)
    assert a.outcome == "fail"
    assert a.work is None
    failed = a.events[1][0]
    assert isinstance(failed, JobFailed)
    assert (failed.attempt, failed.finished_at) == (0, T1)
    assert a.events[1][1] == "j:terminal"
    job = folded(a)
    assert (job.status, job.attempts, job.deployment_id) == ("failed", 0, "d1")
    assert "inputs.text" in (job.error or "")
    assert (job.started_at, job.finished_at) == (None, T1)


def test_unknown_skill_and_missing_deployment_fail_with_a_reason() -> None:
    a = admit(cmd({}, skill="nope"), project({"echo": ECHO}), 10, T1)
    assert a.outcome == "fail"
    failed = a.events[1][0]
    assert isinstance(failed, JobFailed)
    assert "echo" in failed.error
    b = admit(cmd({}), project(None), 10, T1)
    assert b.outcome == "fail"
    job = folded(b)
    assert (job.status, job.deployment_id) == ("failed", None)
    assert "no active deployment" in (job.error or "")


def test_inputs_validated_against_an_older_deployment_are_checked_again() -> None:
    # The gateway checked them against d0; the job is pinned to d1, whose schema they break.
    stale = msgspec.structs.replace(cmd({"text": 5}), deployment_id="d0")
    a = admit(stale, project({"echo": ECHO}), 10, T1)
    assert a.outcome == "fail"
    assert "inputs.text" in (folded(a).error or "")


def test_a_skill_missing_from_the_pinned_deployment_fails_whatever_the_gateway_saw() -> None:
    a = admit(
        msgspec.structs.replace(cmd({}, skill="nope"), deployment_id="d1"),
        project({"echo": ECHO}),
        10,
        T1,
    )
    assert a.outcome == "fail"
    assert "nope" in (folded(a).error or "")
