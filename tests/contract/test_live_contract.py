"""The OpenAPI document against the live stack (SPEC §13): a client generated from the
served ``/openapi.json`` runs a job, schemathesis checks that what the API answers is what
the document says, and the event streams send the frames it describes.
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from puras_bundle import pack_project
from stackapi import PROJECT_DIR, Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CLIENT_PACKAGE = "puras_api_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"


@pytest.fixture
def generated_client(
    api: Api, openapi_doc: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """The package ``openapi-python-client`` generates from the served document, imported."""
    served = httpx.get(f"{api.base}/openapi.json", timeout=30)
    assert served.status_code == 200, served.text
    assert served.json() == openapi_doc
    spec = tmp_path / "openapi.json"
    spec.write_bytes(served.content)
    env = {**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(spec), "--meta", "none"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / CLIENT_PACKAGE / "__init__.py").is_file(), done.stdout
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module(CLIENT_PACKAGE)
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == CLIENT_PACKAGE]:
            del sys.modules[name]


def test_a_generated_client_submits_waits_and_reads_back(api: Api, generated_client: Any) -> None:
    pkg = CLIENT_PACKAGE
    submit_job = importlib.import_module(f"{pkg}.api.jobs.submit_job")
    get_job = importlib.import_module(f"{pkg}.api.jobs.get_job")
    list_jobs = importlib.import_module(f"{pkg}.api.jobs.list_jobs")
    list_job_events = importlib.import_module(f"{pkg}.api.jobs.list_job_events")
    models = importlib.import_module(f"{pkg}.models")

    with generated_client.AuthenticatedClient(base_url=api.base, token=api.key) as client:
        body = models.SubmitBody(
            skill="echo", inputs=models.SubmitBodyInputs.from_dict({"text": "typed"})
        )
        job = submit_job.sync(client=client, body=body, wait=True, timeout=30)
        assert isinstance(job, models.JobOut), job
        assert job.status == models.JobOutStatus.SUCCEEDED
        assert job.result.to_dict() == {"echoed": "typed"}
        assert job.attempts == 1
        assert job.finished_at is not None

        again = get_job.sync(client=client, job_id=job.id)
        assert isinstance(again, models.JobOut)
        assert again.id == job.id
        assert again.to_dict() == job.to_dict()

        page = list_jobs.sync(client=client, status=models.ListJobsStatus.SUCCEEDED, limit=5)
        assert isinstance(page, models.JobList)
        assert [j.id for j in page.jobs] == [job.id]

        events = list_job_events.sync(client=client, job_id=job.id)
        assert isinstance(events, models.JobEventList)
        assert [e.type_ for e in events.events][-1] == "succeeded"

        # The multipart bodies as the document describes them.
        types = importlib.import_module(f"{pkg}.types")
        create_deployment = importlib.import_module(f"{pkg}.api.deployments.create_deployment")
        bundle = types.File(payload=io.BytesIO(pack_project(PROJECT_DIR).data), file_name="b.zip")
        dep = create_deployment.sync(
            client=client,
            body=models.DeploymentUpload(bundle=bundle, notes="generated", activate=False),
        )
        assert isinstance(dep, models.Deployment), dep
        assert dep.notes == "generated"
        assert dep.active is False
        assert "echo" in {s.name for s in dep.skills}

        drive_upload = importlib.import_module(f"{pkg}.api.drive.drive_upload")
        drive_list = importlib.import_module(f"{pkg}.api.drive.drive_list")
        up = drive_upload.sync(
            client=client,
            body=models.DriveUpload(
                file=types.File(payload=io.BytesIO(b"hello"), file_name="hi.txt"), path="docs/"
            ),
        )
        assert isinstance(up, models.DriveUploaded), up
        assert (up.drive_path, up.bytes_) == ("docs/hi.txt", 5)
        listing = drive_list.sync(client=client, prefix="docs/")
        assert isinstance(listing, models.DriveListing)
        assert [f.path for f in listing.files] == ["docs/hi.txt"]

        # An error is the typed error shape, with its code.
        missing = submit_job.sync(
            client=client, body=models.SubmitBody(skill="no-such-skill"), wait=True
        )
        assert isinstance(missing, models.Error)
        assert missing.error.code == "skill_not_found"


# -- schemathesis ------------------------------------------------------------------------

CHECKED = (
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs"),
    ("GET", "/v1/jobs/{job_id}"),
    ("GET", "/v1/jobs/{job_id}/events"),
    ("GET", "/v1/jobs/{job_id}/usage"),
    ("POST", "/v1/jobs/{job_id}/cancel"),
    ("POST", "/v1/jobs/{job_id}/feedback"),
    ("GET", "/v1/jobs/{job_id}/feedback"),
    ("GET", "/v1/jobs/{job_id}/feedback/stats"),
    ("GET", "/v1/deployments"),
    ("GET", "/v1/skills"),
    ("GET", "/v1/keys"),
    ("POST", "/v1/keys"),
    ("GET", "/v1/usage"),
    ("GET", "/v1/billing/balance"),
    ("GET", "/v1/secrets"),
    ("PUT", "/v1/secrets/{name}"),
    ("DELETE", "/v1/secrets/{name}"),
    ("GET", "/v1/pricing"),
    ("GET", "/v1/drive/list"),
)
"""Operations generated requests may call on a test project without undoing its setup
(no key revocation, no deployment changes)."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 8


def _conforms(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> None:
    @given(operation.as_strategy(mode))
    @settings(
        max_examples=EXAMPLES,
        # The same examples every run: a failure here is a finding, never a flake.
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

    run()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_responses_conform_to_the_document(
    api: Api, openapi_doc: dict[str, Any], mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_dict(openapi_doc)
    schema.config.update(base_url=api.base)
    # A job the generated calls can find by chance is as good as any: give them one.
    job = api.run("echo", {"text": "for the checks"})
    assert job["status"] == "succeeded"
    headers = {"Authorization": f"Bearer {api.key}"}
    seen = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key not in CHECKED:
            continue
        if mode is GenerationMode.NEGATIVE and key == ("GET", "/v1/pricing"):
            continue  # no parameters: nothing to get wrong
        seen.add(key)
        _conforms(operation, mode, headers)
    assert seen >= set(CHECKED) - {("GET", "/v1/pricing")}


def _operation(schema: Any, method: str, path: str) -> Any:
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        if (result.ok().method.upper(), result.ok().path) == (method, path):
            return result.ok()
    raise AssertionError(f"{method} {path} is not in the document")


def test_the_checks_catch_what_the_document_does_not_say(
    api: Api, openapi_doc: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {api.key}"}
    wrong = copy.deepcopy(openapi_doc)
    wrong["components"]["schemas"]["Balance"]["properties"]["credit_balance_micros"] = {
        "type": "string"
    }
    schema = schemathesis.openapi.from_dict(wrong)
    schema.config.update(base_url=api.base)
    with pytest.raises(FailureGroup, match="Response violates schema"):
        _conforms(
            _operation(schema, "GET", "/v1/billing/balance"), GenerationMode.POSITIVE, headers
        )

    undocumented = copy.deepcopy(openapi_doc)
    del undocumented["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]["404"]
    schema = schemathesis.openapi.from_dict(undocumented)
    schema.config.update(base_url=api.base)
    with pytest.raises(FailureGroup, match="Undocumented status code"):
        _conforms(_operation(schema, "GET", "/v1/jobs/{job_id}"), GenerationMode.POSITIVE, headers)


# -- the event streams, which the generated clients and schemathesis do not read --------


def _validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    # A root that holds the components, so the document's own `$ref`s resolve.
    root = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(root, format_checker=jsonschema.FormatChecker())


def _frames(lines: Iterator[str]) -> list[dict[str, str]]:
    frames: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if fields:
                frames.append(fields)
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    if fields:
        frames.append(fields)
    return frames


def test_the_streams_send_the_frames_the_document_describes(
    api: Api, openapi_doc: dict[str, Any]
) -> None:
    frame_schema = _validator(openapi_doc, "StreamFrame")
    job_schema = _validator(openapi_doc, "JobOut")
    op = openapi_doc["paths"]["/v1/jobs"]["post"]
    with api.http.stream(
        "POST",
        "/v1/jobs",
        params={"stream": "true"},
        json={"skill": "echo", "inputs": {"text": "s"}},
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].split(";")[0] in op["responses"]["200"]["content"]
        job_id = r.headers["Puras-Job-Id"]
        frames = _frames(r.iter_lines())
    *events, end = frames
    assert end["event"] == "end"
    final = json.loads(end["data"])
    job_schema.validate(final)
    assert final["id"] == job_id
    assert final["status"] == "succeeded"
    for f in events:
        data = json.loads(f["data"])
        frame_schema.validate(data)
        assert (f["id"], f["event"]) == (str(data["id"]), data["type"])
    assert [json.loads(f["data"])["type"] for f in events][-1] == "succeeded"

    # Re-attach after the first event: the rest, nothing repeated.
    with api.http.stream(
        "GET", f"/v1/jobs/{job_id}/stream", headers={"Last-Event-ID": events[0]["id"]}
    ) as r:
        assert r.status_code == 200
        again = _frames(r.iter_lines())
    assert [f.get("id") for f in again[:-1]] == [f["id"] for f in events[1:]]
    job_schema.validate(json.loads(again[-1]["data"]))


def test_the_operator_calls_answer_the_documented_shapes(
    api: Api, admin: httpx.Client, openapi_doc: dict[str, Any]
) -> None:
    projects = admin.get("/v1/admin/projects")
    assert projects.status_code == 200, projects.text
    _validator(openapi_doc, "ProjectList").validate(projects.json())
    assert api.project_id in {p["id"] for p in projects.json()["projects"]}
    keys = admin.get(f"/v1/admin/projects/{api.project_id}/keys")
    assert keys.status_code == 200, keys.text
    _validator(openapi_doc, "KeyList").validate(keys.json())
    audit = admin.post("/v1/admin/audit", params={"settle": "10"})
    assert audit.status_code == 200, audit.text
    _validator(openapi_doc, "AuditReport").validate(audit.json())
