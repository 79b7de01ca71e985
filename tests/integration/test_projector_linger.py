"""A projector's linger folds a live trickle of events into one transaction."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from puras_common.events.base import encode_event
from puras_common.events.subjects import AGG_JOB, EVENTS_STREAM, event_subject
from puras_common.events.types import JobQueued, JobStarted
from puras_common.projection import ProjectorRunner
from puras_gateway.adapters.projections import JobsProjection

pytestmark = pytest.mark.integration


async def _commits_for_a_trickle(bus: Any, dsn: str, linger_s: float) -> list[int]:
    commits: list[int] = []
    runner = ProjectorRunner(
        dsn, bus.js, JobsProjection(), linger_s=linger_s, on_commit=lambda _n, s: commits.append(s)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await asyncio.wait_for(runner.caught_up.wait(), 30)
        base = len(commits)
        project = uuid.uuid4().hex
        last = 0
        for i in range(3):
            job = f"j{i}{uuid.uuid4().hex[:8]}"
            at = datetime(2026, 1, 1, tzinfo=UTC)
            for ev, kind in (
                (JobQueued(skill="echo", inputs={}, deployment_id="d1", created_at=at), "q"),
                (JobStarted(attempt=1, deployment_id="d1", runner_id="r1", started_at=at), "s"),
            ):
                data = encode_event(
                    ev, event_id=f"{job}:{kind}", project_id=project, aggregate_id=job
                )
                ack = await bus.js.publish(
                    event_subject(project, AGG_JOB, job), data, stream=EVENTS_STREAM
                )
                last = int(ack.seq)
                await asyncio.sleep(0.005)  # events of a live log come apart
        assert await runner.wait_for(last, 30)
        return commits[base:]
    finally:
        stop.set()
        await task


async def test_a_lingering_projector_commits_a_trickle_at_once(bus: Any, database_url: str) -> None:
    commits = await _commits_for_a_trickle(bus, database_url, linger_s=0.5)
    assert len(commits) == 1, commits


async def test_without_linger_each_event_that_arrives_alone_commits_alone(
    bus: Any, database_url: str
) -> None:
    commits = await _commits_for_a_trickle(bus, database_url, linger_s=0.0)
    assert len(commits) > 1, commits
