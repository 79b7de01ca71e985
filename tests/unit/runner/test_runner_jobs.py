"""Deliveries, event ids, events and the job process's environment (J5, J11, R1)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from puras_common.events.commands import RunJob
from puras_common.events.ids import job_log_id, job_started_id, job_terminal_id
from puras_common.events.types import JobFailed, JobSucceeded
from puras_runner.domain.jobs import (
    TERMINAL_EVENT_TYPES,
    Delivery,
    classify_delivery,
    cpu_limits,
    job_env,
    log_events,
    process_limits,
    runner_lost_event,
    safe_token,
    started_event,
    terminal_event,
    timeout_for,
)
from puras_runner.domain.logs import LogBatch
from puras_runner.domain.outcome import Failed, Succeeded

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _job(**kw: object) -> RunJob:
    base: dict[str, object] = {
        "job_id": "job-1",
        "project_id": "proj-1",
        "skill": "echo",
        "inputs": {"x": 1},
        "deployment_id": "dep-1",
        "created_at": T0,
        "bundle_key": "proj-1/dep-1.zip",
        "bundle_sha256": "ab" * 32,
    }
    base.update(kw)
    return RunJob(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "kind"),
    [
        (1, 3, Delivery.FIRST),
        (2, 3, Delivery.RETRY),
        (3, 3, Delivery.RETRY),
        (4, 3, Delivery.END_LOST),
        (2, 1, Delivery.END_LOST),
        (1, 1, Delivery.FIRST),
    ],
)
def test_classify_delivery(attempt: int, max_attempts: int, kind: Delivery) -> None:
    assert classify_delivery(attempt, max_attempts) is kind


def test_event_ids() -> None:
    assert job_started_id("j", 2) == "j:started:2"
    assert job_log_id("j", 2, 7) == "j:log:2:7"
    assert job_terminal_id("j") == "j:terminal"
    assert {"job.succeeded", "job.failed", "job.cancelled"} == TERMINAL_EVENT_TYPES


def test_started_event() -> None:
    ev = started_event(_job(), 2, "runner-a", T0)
    assert (ev.attempt, ev.deployment_id, ev.runner_id, ev.started_at) == (
        2,
        "dep-1",
        "runner-a",
        T0,
    )


def test_terminal_event_success_carries_the_attempts_facts() -> None:
    t1 = T0 + timedelta(seconds=1)
    ev = terminal_event(Succeeded({"y": 2}), attempt=2, started_at=T0, finished_at=t1)
    assert isinstance(ev, JobSucceeded)
    assert (ev.result, ev.attempt, ev.started_at, ev.finished_at) == ({"y": 2}, 2, T0, t1)


def test_terminal_event_failure() -> None:
    ev = terminal_event(Failed("boom"), attempt=1, started_at=T0, finished_at=T0)
    assert isinstance(ev, JobFailed)
    assert (ev.error, ev.attempt) == ("boom", 1)


def test_runner_lost_event() -> None:
    ev = runner_lost_event(max_attempts=3, started_at=T0, now=T0)
    assert (ev.error, ev.attempt, ev.started_at) == ("runner lost", 3, T0)


def test_log_events_mark_the_last_one_truncated() -> None:
    batches = [LogBatch("stdout", ["a", "b"]), LogBatch("stderr", ["c"])]
    events = log_events(batches, truncated=True)
    assert [(e.stream, e.lines, e.truncated) for e in events] == [
        ("stdout", ["a", "b"], False),
        ("stderr", ["c"], True),
    ]
    assert [e.truncated for e in log_events(batches, truncated=False)] == [False, False]


def test_truncation_with_nothing_left_gets_its_own_event() -> None:
    events = log_events([], truncated=True)
    assert len(events) == 1
    assert events[0].truncated
    assert events[0].lines == []
    assert log_events([], truncated=False) == []


def test_job_env_is_exactly_the_allowed_keys() -> None:
    env = job_env(
        _job(),
        attempt=2,
        venv_bin="/v/bin",
        workdir="/w",
        bundle_root="/b",
        secrets={"API_KEY": "k", "PATH": "/evil", "PURAS_JOB_ID": "forged"},
    )
    assert env == {
        "PATH": "/v/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/w",
        "TMPDIR": "/w/tmp",
        "LANG": "C.UTF-8",
        "PYTHONPATH": "/b",
        "PURAS_JOB_ID": "job-1",
        "PURAS_PROJECT_ID": "proj-1",
        "PURAS_SKILL": "echo",
        "PURAS_DEPLOYMENT_ID": "dep-1",
        "PURAS_DEPLOYMENT_ROOT": "/b",
        "PURAS_ATTEMPT": "2",
        "API_KEY": "k",
    }


def test_job_env_carries_the_operators_allowed_networks_not_a_secrets() -> None:
    def env(allow: tuple[str, ...]) -> dict[str, str]:
        return job_env(
            _job(),
            attempt=1,
            venv_bin="/v/bin",
            workdir="/w",
            bundle_root="/b",
            secrets={"PURAS_ALLOW_PRIVATE_URLS": "1"},
            allow_networks=allow,
        )

    assert "PURAS_ALLOW_PRIVATE_URLS" not in env(())
    assert env(("10.1.2.0/24", "fd00::/8"))["PURAS_ALLOW_PRIVATE_URLS"] == "10.1.2.0/24,fd00::/8"


def test_timeout_precedence() -> None:
    assert timeout_for(_job(timeout_seconds=7), 9, 300) == 7.0
    assert timeout_for(_job(), 9, 300) == 9.0
    assert timeout_for(_job(), None, 300) == 300.0
    assert timeout_for(_job(timeout_seconds=0), None, 12.5) == 12.5


def test_limits() -> None:
    limits = process_limits(memory_limit_mb=1024)
    assert limits.memory_bytes == 1024 * 1024 * 1024
    assert limits.file_size_bytes == 1 << 30
    assert limits.open_files == 1024
    assert cpu_limits(10) == (15, 20)


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "a b", "x" * 201, "a.b"])
def test_safe_token_refuses_path_tricks(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot be used in a path"):
        safe_token("job id", bad)
    assert safe_token("job id", "0193a-Z_9") == "0193a-Z_9"
