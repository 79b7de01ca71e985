"""Bad input gets a 4xx with a message that says what to fix, never a 500 (issue: Bad input)."""

from __future__ import annotations

import io
import zipfile

import httpx
import pytest

from stackapi import Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def err(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["code"]
    message: str = body["error"]["message"]
    assert message
    return message


def test_malformed_bodies(api: Api) -> None:
    assert "JSON" in err(api.http.post("/v1/jobs", content=b"{not json"), 400)
    assert "skill" in err(api.http.post("/v1/jobs", content=b'{"inputs": {}}'), 400)
    assert "inputs" in err(api.http.post("/v1/jobs", json={"skill": "echo", "inputs": 3}), 400)
    assert "empty" in err(api.http.post("/v1/jobs", content=b""), 400)


def test_unknown_skill_is_404_naming_it_and_listing_the_skills(api: Api) -> None:
    m = err(api.submit("nope", {}), 404)
    assert "nope" in m
    for name in ("echo", "boom", "nap"):
        assert name in m


def test_schema_violation_is_422_naming_the_field_and_creates_no_job(api: Api) -> None:
    m = err(api.submit("echo", {"text": 5}), 422)
    assert "text" in m
    m = err(api.submit("echo", {}), 422)
    assert "text" in m
    assert api.http.get("/v1/jobs").json()["jobs"] == []


def test_a_422_lists_every_violation_with_its_path(api: Api) -> None:
    r = api.submit("nap", {"seconds": "soon", "extra": 1})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_inputs"
    assert error["problems"] == [
        {"path": "inputs.seconds", "message": "'soon' is not of type 'number'"}
    ]
    r = api.submit("nap", {"seconds": -1})
    assert r.json()["error"]["problems"] == [
        {"path": "inputs.seconds", "message": "-1 is less than the minimum of 0"}
    ]


def test_unknown_top_level_fields_are_a_400_naming_each(api: Api) -> None:
    # A misspelled `inputs` must never run the skill with empty inputs.
    r = api.http.post("/v1/jobs", json={"skill": "echo", "input": {"text": "x"}, "tpye": "a"})
    m = err(r, 400)
    assert "`input` (did you mean `inputs`?)" in m
    assert "`tpye`" in m
    assert api.http.get("/v1/jobs").json()["jobs"] == []


def test_query_errors(api: Api) -> None:
    body = {"skill": "echo", "inputs": {"text": "x"}}
    assert "stream" in err(api.http.post("/v1/jobs?wait=true&stream=true", json=body), 400)
    assert "timeout" in err(api.http.post("/v1/jobs?wait=true&timeout=61", json=body), 400)
    assert "timeout" in err(api.http.post("/v1/jobs?wait=true&timeout=0", json=body), 400)
    assert "limit" in err(api.http.get("/v1/jobs?limit=500"), 400)
    assert "status" in err(api.http.get("/v1/jobs?status=done"), 400)


def test_keys(api: Api) -> None:
    no_key = httpx.post(f"{api.base}/v1/jobs", json={"skill": "echo", "inputs": {}})
    assert "Authorization" in err(no_key, 401)
    wrong = httpx.get(
        f"{api.base}/v1/jobs",
        headers={"Authorization": "Bearer " + api.key[:-3] + "xyz"},
    )
    err(wrong, 401)
    stripped = httpx.get(
        f"{api.base}/v1/jobs", headers={"Authorization": "Bearer " + api.key.replace(".", "")}
    )
    assert "dot" in err(stripped, 401)


def test_admin_calls_need_the_admin_token(api: Api) -> None:
    err(httpx.post(f"{api.base}/v1/admin/projects", json={"name": "x"}), 401)
    err(api.http.post("/v1/admin/projects", json={"name": "x"}), 401)
    err(api.http.post(f"/v1/admin/projects/{api.project_id}/credits", json={"usd": 1}), 401)


def test_admin_bad_bodies(admin: httpx.Client) -> None:
    err(admin.post("/v1/admin/projects", content=b"{"), 400)
    err(admin.post("/v1/admin/projects", json={}), 400)
    err(admin.post("/v1/admin/projects/nope/keys"), 404)
    pid = admin.post("/v1/admin/projects", json={"name": "p"}).json()["id"]
    err(admin.post(f"/v1/admin/projects/{pid}/credits", json={"usd": -1}), 400)
    err(admin.post(f"/v1/admin/projects/{pid}/credits", json={"usd": 1, "micros": 1}), 400)


def _zip(files: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


def _push(api: Api, data: bytes) -> httpx.Response:
    return api.http.post("/v1/deployments", files={"bundle": ("b.zip", data, "application/zip")})


def test_bundles_that_cannot_deploy(api: Api) -> None:
    assert "zip" in err(_push(api, b"plain text"), 400)
    assert "no skills" in err(_push(api, _zip({"README.md": "hi"})), 400)
    m = err(_push(api, _zip({"skills/Bad Name/skill.yaml": "entrypoint: main.py:run"})), 400)
    assert "Bad Name" in m
    m = err(_push(api, _zip({"skills/x/skill.yaml": "entrypoint: main.py:run"})), 400)
    assert "skills/x/skill.yaml" in m
    assert "main.py" in m
    m = err(
        _push(
            api,
            _zip(
                {
                    "skills/x/skill.yaml": "entrypoint: SKILL.md\nmodel: claude/nope",
                    "skills/x/SKILL.md": "hi",
                }
            ),
        ),
        400,
    )
    assert "claude/sonnet-4-6" in m  # the message lists the known slugs
    m = err(_push(api, _zip({"../evil/skill.yaml": "x", "skills/a/skill.yaml": "x"})), 400)
    assert ".." in m
    assert "bundle" in err(api.http.post("/v1/deployments", data={"notes": "x"}), 400)
    assert "multipart" in err(api.http.post("/v1/deployments", json={"bundle": "x"}), 400)


def test_unknown_paths_and_ids(api: Api) -> None:
    err(api.http.get("/v1/jobs/00000000-0000-7000-8000-000000000000"), 404)
    err(api.http.get("/v1/jobs/not-a-uuid/events"), 404)
    err(api.http.get("/v1/jobs/a.b.c/stream"), 404)
    err(api.http.get("/v1/nothing-here"), 404)
