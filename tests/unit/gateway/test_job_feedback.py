"""Feedback on a job (J9): what a body may hold, the stats, and the use case over fakes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from puras_common.bus.client import Published
from puras_common.events.base import Event
from puras_common.events.subjects import AGG_FEEDBACK
from puras_common.events.types import JobFeedbackGiven
from puras_gateway.app.auth import Principal
from puras_gateway.app.feedback import FeedbackService
from puras_gateway.domain.errors import ApiError
from puras_gateway.domain.feedback import (
    MAX_COMMENT_CHARS,
    Feedback,
    feedback_stats,
    parse_feedback,
)

P = "0a1b2c3d-0000-7000-8000-000000000001"
JOB = "0a1b2c3d-0000-7000-8000-0000000000aa"
WHO = Principal(project_id=P, key_prefix="k")


def _parse(body: Any) -> Feedback:
    return parse_feedback(json.dumps(body).encode())


def _refused(body: Any) -> ApiError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(ApiError) as err:
        parse_feedback(raw)
    assert err.value.status == 400
    return err.value


# -- the body ---------------------------------------------------------------------------


def test_a_rating_a_comment_and_a_user_are_accepted() -> None:
    assert _parse({"rating": 1, "comment": "great", "end_user_id": "u1"}) == Feedback(
        rating=1, comment="great", end_user_id="u1"
    )
    assert _parse({"rating": -1}) == Feedback(rating=-1, comment="", end_user_id="")
    assert _parse({"comment": "just a remark"}).rating == 0


@pytest.mark.parametrize("rating", [2, -2, 1.0, True, "1", None])
def test_a_rating_other_than_minus_one_zero_one_is_refused(rating: Any) -> None:
    err = _refused({"rating": rating, "comment": "x"})
    assert "`rating` must be -1 (down), 0 (no thumb) or 1 (up)" in err.message


@pytest.mark.parametrize("body", [{}, {"rating": 0}, {"rating": 0, "comment": "  \n"}])
def test_neither_a_thumb_nor_a_comment_is_refused(body: dict[str, Any]) -> None:
    assert "non-empty comment" in _refused(body).message


def test_a_comment_over_the_cap_is_refused_naming_the_cap() -> None:
    assert _parse({"comment": "x" * MAX_COMMENT_CHARS}).comment == "x" * MAX_COMMENT_CHARS
    err = _refused({"rating": 1, "comment": "x" * (MAX_COMMENT_CHARS + 1)})
    assert str(MAX_COMMENT_CHARS) in err.message


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"rating": 1, "stars": 5}, "unknown field 'stars'"),
        ({"rating": 1, "end_user_id": 7}, "`end_user_id` must be a string"),
        ({"rating": 1, "end_user_id": "u" * 201}, "longer than 200"),
        ({"rating": 1, "end_user_id": "a\nb"}, "control characters"),
        ({"rating": 1, "comment": ["a"]}, "`comment` must be a string"),
        ([1], "Expected `object`"),
    ],
)
def test_malformed_fields_are_refused_saying_which(body: Any, says: str) -> None:
    assert says in _refused(body).message


def test_a_nul_or_bad_json_is_a_400_not_a_500() -> None:
    _refused({"rating": 1, "comment": "a\x00b"})
    _refused(b"{not json")
    _refused(b"")


def test_stats_count_every_row_and_score_up_minus_down() -> None:
    rows = [{"rating": 1}, {"rating": 1}, {"rating": -1}, {"rating": 0}]
    assert feedback_stats(rows) == {"up": 2, "down": 1, "count": 4, "score": 1}
    assert feedback_stats([]) == {"up": 0, "down": 0, "count": 0, "score": 0}


# -- the use case -----------------------------------------------------------------------


class _Log:
    def __init__(self) -> None:
        self.appended: list[tuple[Event, dict[str, Any]]] = []

    async def append(self, event: Event, **kw: Any) -> Published:
        self.appended.append((event, kw))
        return Published(seq=len(self.appended), duplicate=False, subject="")

    async def last_subject_seq(self, subject: str) -> int:
        return len(self.appended)


class _Store:
    """The projection, folded in memory from what the log was given."""

    def __init__(self, log: _Log) -> None:
        self._log = log

    def _rows(self, project_id: str, job_id: str) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for seq, (ev, kw) in enumerate(self._log.appended, 1):
            assert isinstance(ev, JobFeedbackGiven)
            if kw["project_id"] == project_id and kw["aggregate_id"] == job_id:
                first = rows.get(ev.end_user_id, {}).get("created_at", seq)
                rows[ev.end_user_id] = {
                    "job_id": job_id,
                    "end_user_id": ev.end_user_id,
                    "rating": ev.rating,
                    "comment": ev.comment,
                    "created_at": first,
                    "updated_at": seq,
                }
        return sorted(rows.values(), key=lambda r: -r["updated_at"])

    async def list_feedback(self, project_id: str, job_id: str) -> list[dict[str, Any]]:
        return self._rows(project_id, job_id)

    async def get_feedback(
        self, project_id: str, job_id: str, end_user_id: str
    ) -> dict[str, Any] | None:
        found = [r for r in self._rows(project_id, job_id) if r["end_user_id"] == end_user_id]
        return found[0] if found else None


class _Watch:
    def __init__(self, caught_up: bool) -> None:
        self.caught_up = caught_up
        self.waited: list[tuple[str, int]] = []

    async def wait_for(self, name: str, seq: int, timeout: float) -> bool:
        self.waited.append((name, seq))
        return self.caught_up


async def _find_job(p: Principal, job_id: str) -> object:
    if p.project_id != P or job_id != JOB:
        raise ApiError.not_found(f"job {job_id!r} not found in this project", code="job_not_found")
    return object()


def _service(caught_up: bool = True) -> tuple[FeedbackService, _Log, _Watch]:
    log, watch = _Log(), _Watch(caught_up)
    svc = FeedbackService(
        bus=log, store=_Store(log), watcher=watch, find_job=_find_job, wait_s=0.01
    )
    return svc, log, watch


async def test_feedback_is_a_fact_on_the_jobs_feedback_subject_and_reads_back() -> None:
    svc, log, watch = _service()
    row = await svc.give(WHO, JOB, Feedback(rating=1, comment="nice", end_user_id="u1"))
    assert row["rating"] == 1
    assert row["comment"] == "nice"
    assert row["end_user_id"] == "u1"
    ((ev, kw),) = log.appended
    assert ev == JobFeedbackGiven(end_user_id="u1", rating=1, comment="nice")
    assert kw["aggregate"] == AGG_FEEDBACK
    assert kw["aggregate_id"] == JOB
    assert kw["project_id"] == P
    assert kw["event_id"].startswith(f"feedback:{JOB}:")
    assert watch.waited == [("feedback", 1)]


async def test_one_row_per_end_user_newest_first_and_the_stats() -> None:
    svc, log, _ = _service()
    await svc.give(WHO, JOB, Feedback(rating=1, comment="", end_user_id="u1"))
    await svc.give(WHO, JOB, Feedback(rating=1, comment="", end_user_id="u2"))
    again = await svc.give(WHO, JOB, Feedback(rating=-1, comment="changed", end_user_id="u1"))
    assert again["created_at"] == 1
    assert again["updated_at"] == 3
    listed = (await svc.list(WHO, JOB))["feedback"]
    assert [(r["end_user_id"], r["rating"]) for r in listed] == [("u1", -1), ("u2", 1)]
    assert await svc.stats(WHO, JOB) == {"up": 1, "down": 1, "count": 2, "score": 0}
    # Two different facts, even for the same pair: each POST is its own event id.
    assert len({kw["event_id"] for _, kw in log.appended}) == 3


async def test_a_projection_behind_answers_the_feedback_as_recorded() -> None:
    svc, _, _ = _service(caught_up=False)
    row = await svc.give(WHO, JOB, Feedback(rating=0, comment="hm", end_user_id=""))
    assert (row["job_id"], row["rating"], row["comment"], row["end_user_id"]) == (
        JOB,
        0,
        "hm",
        "",
    )


@pytest.mark.parametrize(
    "who", [Principal(project_id="0a1b2c3d-0000-7000-8000-000000000002", key_prefix="x"), WHO]
)
async def test_another_projects_or_an_unknown_job_is_a_404_and_records_nothing(
    who: Principal,
) -> None:
    svc, log, _ = _service()
    job = JOB if who is not WHO else "0a1b2c3d-0000-7000-8000-00000000dead"
    for call in (
        svc.give(who, job, Feedback(rating=1, comment="", end_user_id="")),
        svc.list(who, job),
        svc.stats(who, job),
    ):
        with pytest.raises(ApiError) as err:
            await call
        assert err.value.status == 404
    assert log.appended == []
