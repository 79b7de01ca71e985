"""The feedback projection (J9) on a real nats-server and Postgres: one row per (job,
end user), the latest rating with the first one's time, newest first, scoped by project,
and a replay changes nothing."""

from __future__ import annotations

import uuid

import pytest
from projector_helpers import Projector

from puras_common.bus import Bus
from puras_common.db import create_pool
from puras_common.events.ids import feedback_given_id
from puras_common.events.subjects import AGG_FEEDBACK
from puras_common.events.types import JobFeedbackGiven
from puras_gateway.adapters.feedback import FeedbackProjection, FeedbackReads

pytestmark = pytest.mark.integration


async def _give(bus: Bus, project: str, job: str, user: str, rating: int, comment: str) -> int:
    pub = await bus.append(
        JobFeedbackGiven(end_user_id=user, rating=rating, comment=comment),
        project_id=project,
        aggregate=AGG_FEEDBACK,
        aggregate_id=job,
        event_id=feedback_given_id(job, str(uuid.uuid4())),
    )
    return pub.seq


async def test_feedback_rows_are_upserted_per_end_user(bus: Bus, database_url: str) -> None:
    project, other = str(uuid.uuid4()), str(uuid.uuid4())
    job, other_job = str(uuid.uuid4()), str(uuid.uuid4())
    await _give(bus, project, job, "u1", 1, "")
    await _give(bus, project, job, "", 0, "anonymous remark")
    await _give(bus, other, other_job, "u1", -1, "not yours")
    last = await _give(bus, project, job, "u1", -1, "changed my mind")
    projector = Projector(database_url, bus, FeedbackProjection())
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        await projector.applied(last)
        reads = FeedbackReads(pool)
        rows = await reads.list_feedback(project, job)
        assert [(r["end_user_id"], r["rating"], r["comment"]) for r in rows] == [
            ("u1", -1, "changed my mind"),
            ("", 0, "anonymous remark"),
        ]
        u1 = rows[0]
        assert u1["created_at"] < u1["updated_at"]  # the first rating's time is kept
        assert await reads.get_feedback(project, job, "u1") == u1
        # Another project's job is not reachable through this project, nor the reverse.
        assert await reads.list_feedback(project, other_job) == []
        assert await reads.list_feedback(other, job) == []
        assert [r["rating"] for r in await reads.list_feedback(other, other_job)] == [-1]
    finally:
        await projector.stop()
    # A second projector over the same table replays nothing twice (the checkpoint and
    # each row's sequence guard it).
    again = Projector(database_url, bus, FeedbackProjection())
    try:
        await again.applied(last)
        rows_again = await FeedbackReads(pool).list_feedback(project, job)
        assert rows_again == rows
    finally:
        await again.stop()
        await pool.close()
