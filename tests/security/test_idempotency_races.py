"""Idempotency-Key on POST /v1/jobs (J10)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from stackapi import Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def submit(api: Api, key: str, text: str, **params: str) -> tuple[int, dict[str, object]]:
    r = api.http.post(
        "/v1/jobs",
        json={"skill": "echo", "inputs": {"text": text}},
        headers={"Idempotency-Key": key},
        params=params,
    )
    return r.status_code, r.json()


def test_the_same_key_and_body_return_the_original_job(api: Api) -> None:
    code, first = submit(api, "order-1", "hi", wait="true")
    assert code == 200
    assert first["status"] == "succeeded"
    code, again = submit(api, "order-1", "hi")
    assert code == 200
    assert again["id"] == first["id"]
    assert again["status"] == "succeeded"
    code, other = submit(api, "order-2", "hi")
    assert code == 200
    assert other["id"] != first["id"]


def test_the_same_key_with_another_body_is_a_conflict(api: Api) -> None:
    code, first = submit(api, "k", "one")
    assert code == 200
    code, err = submit(api, "k", "two")
    assert code == 409
    assert "Idempotency-Key" in err["error"]["message"]  # type: ignore[index]
    assert err["error"]["job_id"] == first["id"]  # type: ignore[index]


def test_many_concurrent_identical_requests_make_exactly_one_job(api: Api) -> None:
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _i: submit(api, "burst", "x"), range(32)))
    assert {code for code, _ in results} == {200}
    ids = {body["id"] for _, body in results}
    assert len(ids) == 1
    (job_id,) = ids
    assert api.wait_terminal(str(job_id))["status"] == "succeeded"
    jobs = api.http.get("/v1/jobs", params={"limit": 200}).json()["jobs"]
    assert [j["id"] for j in jobs] == [job_id]


def test_keys_are_scoped_to_the_project(api: Api, stack: object) -> None:
    from stackapi import new_api

    other = new_api(stack, "other")  # type: ignore[arg-type]
    try:
        assert other.push().status_code == 200
        _, mine = submit(api, "shared-key", "a")
        code, theirs = submit(other, "shared-key", "b")
        assert code == 200
        assert theirs["id"] != mine["id"]
    finally:
        other.close()


def test_bad_keys_are_400(api: Api) -> None:
    code, body = submit(api, "x" * 256, "a")
    assert code == 400
    assert "Idempotency-Key" in body["error"]["message"]  # type: ignore[index]
