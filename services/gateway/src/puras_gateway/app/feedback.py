"""Feedback use cases (J9): give feedback on a job, list a job's, and sum them up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from puras_common.clock import Clock, SystemClock
from puras_common.events.ids import feedback_given_id
from puras_common.events.subjects import AGG_FEEDBACK
from puras_common.events.types import JobFeedbackGiven
from puras_common.ids import new_id
from puras_gateway.app.auth import Principal
from puras_gateway.app.ports import EventLog, FeedbackStore, ProjectionWatch
from puras_gateway.domain.feedback import Feedback, feedback_stats

__all__ = ["FEEDBACK_PROJECTION", "FeedbackService"]

FEEDBACK_PROJECTION = "feedback"
"""The projection that holds the rows (read-your-writes waits for it)."""


class FeedbackService:
    def __init__(
        self,
        *,
        bus: EventLog,
        store: FeedbackStore,
        watcher: ProjectionWatch,
        find_job: Callable[[Principal, str], Awaitable[object]],
        wait_s: float,
        clock: Clock | None = None,
    ) -> None:
        self._bus = bus
        self._store = store
        self._watcher = watcher
        self._find_job = find_job
        """Raises the API's 404 unless the job is the caller's project's."""
        self._wait = wait_s
        self._clock = clock or SystemClock()

    async def give(self, p: Principal, job_id: str, fb: Feedback) -> dict[str, Any]:
        """Record the feedback; the row as it now stands (J9's upsert)."""
        await self._find_job(p, job_id)
        pub = await self._bus.append(
            JobFeedbackGiven(end_user_id=fb.end_user_id, rating=fb.rating, comment=fb.comment),
            project_id=p.project_id,
            aggregate=AGG_FEEDBACK,
            aggregate_id=job_id,
            event_id=feedback_given_id(job_id, new_id()),
        )
        # Read-your-writes: the next GET (on any replica) shows what this POST answers.
        if await self._watcher.wait_for(FEEDBACK_PROJECTION, pub.seq, self._wait):
            row = await self._store.get_feedback(p.project_id, job_id, fb.end_user_id)
            if row is not None:
                return row
        # The projection is behind (degraded): the fact is recorded and will show; answer
        # it as recorded.
        now = self._clock.now()
        return {
            "job_id": job_id,
            "end_user_id": fb.end_user_id,
            "rating": fb.rating,
            "comment": fb.comment,
            "created_at": now,
            "updated_at": now,
        }

    async def list(self, p: Principal, job_id: str) -> dict[str, Any]:
        await self._find_job(p, job_id)
        return {"feedback": await self._store.list_feedback(p.project_id, job_id)}

    async def stats(self, p: Principal, job_id: str) -> dict[str, Any]:
        await self._find_job(p, job_id)
        return feedback_stats(await self._store.list_feedback(p.project_id, job_id))
