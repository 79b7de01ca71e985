"""Feedback on a job's result (J9) over the whole stack: upsert per end user, newest
first, stats, bad bodies as clear 4xx, another project's job as a 404."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from puras_cli.context import CliContext
from puras_cli.devstack import Stack
from puras_cli.main import cli
from stackapi import Api, new_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_feedback_is_upserted_per_end_user_listed_and_summed(api: Api) -> None:
    job = api.run("echo", {"text": "rate me"})
    base = f"/v1/jobs/{job['id']}/feedback"
    r = api.http.post(base, json={"rating": 1, "comment": "good", "end_user_id": "u1"})
    assert r.status_code == 200, r.text
    first = r.json()
    assert (first["job_id"], first["end_user_id"], first["rating"], first["comment"]) == (
        job["id"],
        "u1",
        1,
        "good",
    )
    # Read-your-writes: the row is there at once.
    assert api.http.get(base).json() == {"feedback": [first]}

    assert api.http.post(base, json={"comment": "anonymous remark"}).status_code == 200
    r = api.http.post(base, json={"rating": -1, "comment": "changed", "end_user_id": "u1"})
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["rating"] == -1
    assert again["created_at"] == first["created_at"]  # the same row, updated in place

    listed = api.http.get(base).json()["feedback"]
    assert [(f["end_user_id"], f["rating"]) for f in listed] == [("u1", -1), ("", 0)]
    stats = api.http.get(f"{base}/stats")
    assert stats.status_code == 200
    assert stats.json() == {"up": 0, "down": 1, "count": 2, "score": -1}


BAD = [
    ({"rating": 2}, 400, "`rating` must be -1"),
    ({"rating": 0}, 400, "non-empty comment"),
    ({}, 400, "non-empty comment"),
    ({"rating": 1, "comment": "x" * 4001}, 400, "at most 4000"),
    ({"rating": 1, "comment": "x" * 1_000_000}, 413, "larger than"),
    ({"rating": 1, "extra": True}, 400, "unknown field 'extra'"),
    ({"rating": 1, "comment": "a\u0000b"}, 400, "comment"),
    ({"rating": 1, "end_user_id": 5}, 400, "`end_user_id` must be a string"),
]


def test_bad_feedback_is_a_4xx_saying_what_to_fix(api: Api) -> None:
    job = api.run("echo", {"text": "x"})
    for body, status, says in BAD:
        r = api.http.post(f"/v1/jobs/{job['id']}/feedback", json=body)
        assert r.status_code == status, (str(body)[:80], r.text[:300])
        assert says in r.json()["error"]["message"], (str(body)[:80], r.text[:300])
    r = api.http.post(f"/v1/jobs/{job['id']}/feedback", content=b"{not json")
    assert r.status_code == 400
    assert api.http.get(f"/v1/jobs/{job['id']}/feedback").json() == {"feedback": []}


def test_another_projects_or_an_unknown_job_is_a_404(api: Api, stack: Stack) -> None:
    job = api.run("echo", {"text": "mine"})
    assert api.http.post(f"/v1/jobs/{job['id']}/feedback", json={"rating": 1}).status_code == 200
    other = new_api(stack, "feedback-other")
    try:
        for method, path in (
            ("POST", f"/v1/jobs/{job['id']}/feedback"),
            ("GET", f"/v1/jobs/{job['id']}/feedback"),
            ("GET", f"/v1/jobs/{job['id']}/feedback/stats"),
            ("GET", "/v1/jobs/0a1b2c3d-0000-7000-8000-00000000dead/feedback"),
            ("POST", "/v1/jobs/not-a-job/feedback"),
        ):
            r = other.http.request(method, path, json={"rating": 1} if method == "POST" else None)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["error"]["code"] == "job_not_found"
    finally:
        other.close()
    # Nothing the other project tried reached this job's feedback.
    assert api.http.get(f"/v1/jobs/{job['id']}/feedback/stats").json()["count"] == 1


def test_the_cli_gives_lists_and_sums_feedback(api: Api, stack: Stack) -> None:
    job = api.run("echo", {"text": "from the cli"})
    obj = CliContext(
        environ={"PURAS_API_BASE": stack.api_base, "PURAS_API_KEY": api.key}, cwd=Path("/")
    )

    def puras(*args: str) -> Any:
        res = CliRunner().invoke(cli, ["jobs", "feedback", job["id"], *args], obj=obj)
        assert res.exit_code == 0, res.output
        return json.loads(res.output)

    row = puras("--rating", "up", "--comment", "from the cli", "--user", "cli-user")
    assert (row["rating"], row["end_user_id"]) == (1, "cli-user")
    assert puras("--rating", "down", "--user", "cli-user")["rating"] == -1
    assert [r["rating"] for r in puras("--list")["feedback"]] == [-1]
    assert puras("--stats") == {"up": 0, "down": 1, "count": 1, "score": -1}
    res = CliRunner().invoke(cli, ["jobs", "feedback", "not-a-job", "--rating", "up"], obj=obj)
    assert res.exit_code == 1
    assert "not found" in res.output
