from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from puras_common.events import (
    AnyEvent,
    BundleRef,
    CreditGranted,
    DeploymentActivated,
    DeploymentCreated,
    DeploymentDeleted,
    Envelope,
    JobCancelled,
    JobFailed,
    JobQueued,
    JobRecord,
    JobStarted,
    JobSucceeded,
    SkillRecord,
)
from puras_common.projection.base import RecordedEvent
from puras_common.views.deployments import DeploymentsView
from puras_common.views.jobs import apply_job_event, public_event_type, public_payload
from puras_common.views.ledger import BalancesView

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rec(seq: int, ev: AnyEvent, project: str = "p", agg: str = "a") -> RecordedEvent:
    env = Envelope(
        id=f"e{seq}",
        type=type(ev).type,
        v=1,
        at=T0 + timedelta(seconds=seq),
        project_id=project,
        aggregate_id=agg,
    )
    return RecordedEvent(seq=seq, subject=f"ev.{project}.x.{agg}", envelope=env, event=ev)


def test_job_fold_goes_queued_running_terminal_and_terminal_is_final() -> None:
    q = rec(1, JobQueued(skill="s", inputs={"a": 1}, deployment_id="d", created_at=T0), agg="j")
    job = apply_job_event(None, q.envelope, q.event)
    assert job is not None
    assert (job.status, job.attempts, job.deployment_id) == ("queued", 0, "d")
    s = rec(2, JobStarted(attempt=1, deployment_id="d", runner_id="r", started_at=T0), agg="j")
    job = apply_job_event(job, s.envelope, s.event)
    assert job is not None
    assert (job.status, job.attempts, job.started_at) == ("running", 1, T0)
    t1 = T0 + timedelta(seconds=3)
    done = rec(3, JobSucceeded(result={"ok": True}, attempt=1, started_at=T0, finished_at=t1))
    job = apply_job_event(job, done.envelope, done.event)
    final = JobRecord(
        id="j",
        project_id="p",
        skill="s",
        status="succeeded",
        inputs={"a": 1},
        result={"ok": True},
        deployment_id="d",
        created_at=T0,
        attempts=1,
        started_at=T0,
        finished_at=t1,
    )
    assert job == final
    late = rec(4, JobStarted(attempt=2, deployment_id="d", runner_id="r", started_at=t1), agg="j")
    assert apply_job_event(job, late.envelope, late.event) == final
    second = rec(5, JobFailed(error="runner lost", attempt=2, finished_at=t1), agg="j")
    assert apply_job_event(job, second.envelope, second.event) == final


def test_public_names_and_payloads() -> None:
    assert public_event_type("job.succeeded") == "succeeded"
    final = JobRecord(
        id="j", project_id="p", skill="s", status="failed", inputs={}, error="boom", created_at=T0
    )
    payload = public_payload(JobFailed(error="boom", finished_at=T0), job=final)
    assert payload["error"] == "boom"
    assert payload["created_at"] == T0.isoformat().replace("+00:00", "Z")
    with pytest.raises(ValueError, match="folded job"):
        public_payload(JobCancelled(finished_at=T0))


def _created(dep: str, skills: list[str]) -> DeploymentCreated:
    return DeploymentCreated(
        deployment_id=dep,
        notes="",
        bundle=BundleRef(key=f"p/{dep}.zip", sha256="x", size=1),
        requirements_sha256=None,
        skills=[
            SkillRecord(name=n, kind="deterministic", entrypoint="main.py:run") for n in skills
        ],
    )


def test_deployments_view_tracks_active_and_ignores_replays() -> None:
    v = DeploymentsView()
    v.apply(rec(1, _created("d1", ["echo"])))
    v.apply(rec(2, DeploymentActivated(deployment_id="d1")))
    v.apply(rec(3, _created("d2", ["echo", "hello"])))
    assert v.project("p").active_id == "d1"
    v.apply(rec(4, DeploymentActivated(deployment_id="d2", previous_id="d1")))
    pd = v.project("p")
    assert pd.active is not None
    assert sorted(pd.active.skills) == ["echo", "hello"]
    v.apply(rec(5, DeploymentDeleted(deployment_id="d1")))
    v.apply(rec(1, _created("d1", ["echo"])))  # a replayed old event changes nothing
    assert set(v.project("p").deployments) == {"d2"}
    assert v.project("p").subject_seq == 5
    v.apply(rec(6, DeploymentActivated(deployment_id="nope")))
    assert v.project("p").active_id == "d2"


def test_balance_fold_reports_crossing_zero() -> None:
    b = BalancesView()
    assert b.apply(rec(1, CreditGranted(grant_id="g1", micros=5))) == (0, 5)
    assert b.apply(rec(1, CreditGranted(grant_id="g1", micros=5))) is None
    assert b.balance("p") == 5
    assert b.balance("other") == 0


def test_a_held_job_says_why_until_it_is_released() -> None:
    from puras_common.events import JobReleased
    from puras_common.views.jobs import HELD_FOR_CREDIT, job_out

    q = rec(
        1,
        JobQueued(skill="s", inputs={}, deployment_id="d", created_at=T0, held=True),
        agg="j",
    )
    job = apply_job_event(None, q.envelope, q.event)
    assert job is not None
    assert (job.status, job.held_reason) == ("queued", HELD_FOR_CREDIT)
    assert "credit" in job_out(job)["held_reason"]
    released = rec(2, JobReleased(), agg="j")
    job = apply_job_event(job, released.envelope, released.event)
    assert job is not None
    assert (job.status, job.held_reason) == ("queued", None)
    plain = rec(3, JobQueued(skill="s", inputs={}, deployment_id="d", created_at=T0), agg="k")
    unheld = apply_job_event(None, plain.envelope, plain.event)
    assert unheld is not None
    assert unheld.held_reason is None
