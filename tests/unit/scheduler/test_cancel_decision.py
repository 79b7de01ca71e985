from __future__ import annotations

from datetime import UTC, datetime

from puras_common.events import Envelope, JobRecord, JobStatus
from puras_common.views.jobs import apply_job_event
from puras_scheduler.domain.cancel import cancelled_event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def job(status: JobStatus) -> JobRecord:
    return JobRecord(
        id="j",
        project_id="p",
        skill="s",
        status=status,
        inputs={"a": 1},
        created_at=T0,
        attempts=1,
        started_at=T0 if status != "queued" else None,
    )


def test_queued_and_running_jobs_are_cancelled_keeping_what_they_had() -> None:
    for status in ("queued", "running"):
        ev = cancelled_event(job(status), T1)
        assert ev is not None
        env = Envelope(id="j:terminal", type=ev.type, v=2, at=T1, project_id="p", aggregate_id="j")
        after = apply_job_event(job(status), env, ev)
        assert after is not None
        assert (after.status, after.finished_at, after.inputs) == ("cancelled", T1, {"a": 1})
        assert (after.attempts, after.started_at) == (1, None if status == "queued" else T0)


def test_ended_or_unknown_jobs_are_left_alone() -> None:
    for status in ("succeeded", "failed", "cancelled"):
        assert cancelled_event(job(status), T1) is None
    assert cancelled_event(None, T1) is None
