from __future__ import annotations

from datetime import UTC, datetime

from puras_common.events import JobRecord
from puras_scheduler.domain.cancel import cancelled_event

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)


def job(status: str) -> JobRecord:
    return JobRecord(
        id="j",
        project_id="p",
        skill="s",
        status=status,
        inputs={"a": 1},  # type: ignore[arg-type]
        created_at=T0,
        attempts=1,
        started_at=T0 if status != "queued" else None,
    )


def test_queued_and_running_jobs_are_cancelled_keeping_what_they_had() -> None:
    for status in ("queued", "running"):
        ev = cancelled_event(job(status), T1)
        assert ev is not None
        assert ev.job.status == "cancelled"
        assert ev.job.finished_at == T1
        assert ev.job.inputs == {"a": 1}
        assert ev.job.started_at == (None if status == "queued" else T0)


def test_ended_or_unknown_jobs_are_left_alone() -> None:
    for status in ("succeeded", "failed", "cancelled"):
        assert cancelled_event(job(status), T1) is None
    assert cancelled_event(None, T1) is None
