"""The drive on the S3 backend end to end (D1, D8): the drive service stores in a bucket
(a real S3-compatible server on loopback), and each job still sees the project's drive as
``./drive/`` — the runner brings the folder up to the bucket before the job and puts the
job's writes and deletes there before its end, so the API sees them once it has
``succeeded``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from s3_fixtures import ACCESS_KEY, SECRET_KEY, S3Server
from stack_fixtures import serve_stack

from puras_cli.devstack import Stack
from stackapi import Api, new_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PROJECT = Path(__file__).parent / "media_project"


@pytest.fixture(scope="module")
def stack(s3_server: S3Server) -> Iterator[Stack]:
    bucket = f"e2e-drive-{os.getpid()}"
    s3_server.client().make_bucket(bucket)
    yield from serve_stack(
        {
            "PURAS_DRIVE_STORAGE": "s3",
            "PURAS_DRIVE_S3_ENDPOINT": s3_server.endpoint,
            "PURAS_DRIVE_S3_BUCKET": bucket,
            "PURAS_DRIVE_S3_ACCESS_KEY": ACCESS_KEY,
            "PURAS_DRIVE_S3_SECRET_KEY": SECRET_KEY,
            "PURAS_DRIVE_S3_REGION": "us-east-1",
        }
    )


@pytest.fixture
def api(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Api]:
    a = new_api(stack, request.node.name)
    r = a.push(PROJECT, notes="drive on s3")
    assert r.status_code == 200, r.text
    try:
        yield a
    finally:
        a.close()


def _scribble(api: Api, **inputs: Any) -> dict[str, Any]:
    r = api.submit("scribble", inputs, wait="true", timeout="60")
    assert r.status_code == 200, r.text
    job: dict[str, Any] = r.json()
    assert job["status"] == "succeeded", job
    return job


def test_jobs_and_the_api_see_one_drive_in_the_bucket(api: Api, s3_server: S3Server) -> None:
    up = api.http.post(
        "/v1/drive/upload",
        files={"file": ("in.txt", b"uploaded", "text/plain")},
        data={"path": "in/"},
    )
    assert up.status_code == 200, up.text
    # The job reads the uploaded object from its ./drive/ ...
    assert _scribble(api, read="in/in.txt")["result"]["read"] == "uploaded"
    # ... and what it writes is in the bucket when it has succeeded.
    job = _scribble(api, write={"out/report.txt": "written by a job"})
    listing = api.http.get("/v1/drive/list", params={"prefix": "out/"}).json()
    assert [f["path"] for f in listing["files"]] == ["out/report.txt"]
    signed = api.http.get("/v1/drive/sign", params={"path": "out/report.txt"}).json()["url"]
    assert httpx.get(signed, timeout=10).content == b"written by a job"
    origin = api.http.get("/v1/drive/origin", params={"path": "out/report.txt"}).json()
    assert origin["job_id"] == job["id"]
    # Deleted through the API: the next job no longer sees it.
    gone = api.http.delete("/v1/drive/object", params={"path": "in/in.txt"})
    assert gone.status_code == 200, gone.text
    r = api.submit("scribble", {"read": "in/in.txt"}, wait="true", timeout="60")
    assert r.json()["status"] == "failed"
    assert "not found" in r.json()["error"]
    # A job's delete removes the object.
    _scribble(api, delete=["out/report.txt"])
    keys = [
        o.object_name
        for o in s3_server.client().list_objects(
            _bucket_of(api), prefix=f"drive/{api.project_id}/", recursive=True
        )
    ]
    assert keys == []


def _bucket_of(api: Api) -> str:
    return f"e2e-drive-{os.getpid()}"
