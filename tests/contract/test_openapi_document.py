"""The OpenAPI document (SPEC §13): valid, complete, and saying what the API does."""

from __future__ import annotations

from typing import Any

import httpx
from openapi_spec_validator import validate

from puras_drive.settings import MAX_SIGN_TTL_S as DRIVE_MAX
from puras_gateway.bootstrap import Gateway
from puras_gateway.entrypoints.http import create_app
from puras_gateway.entrypoints.openapi import MAX_SIGN_TTL_S, OPERATIONS, undescribed_routes
from puras_gateway.entrypoints.openapi_schemas import J2_FIELDS
from puras_gateway.settings import GatewaySettings

METHODS = ("get", "put", "post", "delete", "patch")


def _operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (m.upper(), path): op
        for path, item in doc["paths"].items()
        for m, op in item.items()
        if m in METHODS
    }


def test_the_document_is_valid_openapi(openapi_doc: dict[str, Any]) -> None:
    validate(openapi_doc)
    assert openapi_doc["openapi"].startswith("3.1")


def test_every_spec_operation_is_described(openapi_doc: dict[str, Any]) -> None:
    ops = _operations(openapi_doc)
    spec_13 = {
        ("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/v1/jobs/{job_id}"),
        ("GET", "/v1/jobs/{job_id}/events"), ("GET", "/v1/jobs/{job_id}/stream"),
        ("POST", "/v1/jobs/{job_id}/cancel"), ("GET", "/v1/jobs/{job_id}/usage"),
        ("POST", "/v1/jobs/{job_id}/feedback"), ("GET", "/v1/jobs/{job_id}/feedback"),
        ("GET", "/v1/jobs/{job_id}/feedback/stats"), ("POST", "/v1/deployments"),
        ("GET", "/v1/deployments"), ("POST", "/v1/deployments/{deployment_id}/activate"),
        ("DELETE", "/v1/deployments/{deployment_id}"), ("GET", "/v1/skills"),
        ("GET", "/v1/secrets"), ("PUT", "/v1/secrets/{name}"), ("DELETE", "/v1/secrets/{name}"),
        ("POST", "/v1/keys"), ("GET", "/v1/keys"), ("DELETE", "/v1/keys/{prefix}"),
        ("GET", "/v1/billing/balance"), ("POST", "/v1/drive/upload"), ("GET", "/v1/drive/list"),
        ("GET", "/v1/drive/sign"), ("DELETE", "/v1/drive/object"), ("GET", "/v1/drive/zip"),
        ("GET", "/v1/drive/origin"), ("POST", "/v1/drive/share"), ("GET", "/v1/pricing"),
        ("POST", "/v1/media/generate"), ("POST", "/v1/admin/projects"),
        ("POST", "/v1/admin/projects/{project_id}/keys"),
        ("POST", "/v1/admin/projects/{project_id}/credits"), ("GET", "/v1/usage"),
        ("POST", "/v1/admin/audit"),
    }  # fmt: skip
    assert spec_13 <= set(ops)
    assert set(ops) == set(OPERATIONS)
    app = create_app(Gateway(GatewaySettings(env="dev")))
    assert undescribed_routes(app) == [], "describe them in entrypoints/openapi.py"
    for key, op in ops.items():
        assert op["summary"], key
        assert op["operationId"], key
        assert "200" in op["responses"], key
    # Health checks stay out of the API's contract.
    assert "/healthz" not in openapi_doc["paths"]
    assert "/readyz" not in openapi_doc["paths"]


def test_security_is_per_operation(openapi_doc: dict[str, Any]) -> None:
    schemes = openapi_doc["components"]["securitySchemes"]
    assert {s["scheme"] for s in schemes.values()} == {"bearer"}
    for (method, path), op in _operations(openapi_doc).items():
        names = {name for req in op["security"] for name in req}
        if path == "/v1/pricing" or path.startswith("/v1/drive/file/"):
            assert names == set(), path
        elif path.startswith("/v1/admin/"):
            assert names == {"adminToken"}, path
        elif path == "/v1/media/generate":
            assert names == {"jobToken"}, path
        else:
            assert names == {"projectKey"}, (method, path)
            assert "401" in op["responses"], (method, path)


def test_every_error_response_has_the_error_shape(openapi_doc: dict[str, Any]) -> None:
    error = openapi_doc["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert error["properties"]["error"]["required"] == ["code", "message"]
    for key, op in _operations(openapi_doc).items():
        errors = {s: r for s, r in op["responses"].items() if s.startswith(("4", "5"))}
        assert "400" in errors, key
        for r in errors.values():
            assert r["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, key


def test_submit_describes_its_modes_and_headers(openapi_doc: dict[str, Any]) -> None:
    op = openapi_doc["paths"]["/v1/jobs"]["post"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["timeout"]["schema"]["minimum"] == 1
    assert params["timeout"]["schema"]["maximum"] == 60
    assert params["Idempotency-Key"]["in"] == "header"
    assert params["Idempotency-Key"]["schema"]["maxLength"] == 255
    ok = op["responses"]["200"]
    assert set(ok["content"]) == {"application/json", "text/event-stream"}
    assert "Puras-Job-Id" in ok["headers"]
    assert "event: end" in op["description"]
    assert ": ping" in op["description"]
    assert {"400", "401", "404", "409", "413", "422"} <= set(op["responses"])
    body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    submit = openapi_doc["components"]["schemas"][body.rsplit("/", 1)[-1]]
    assert submit["required"] == ["skill"]
    assert submit["additionalProperties"] is False

    stream = openapi_doc["paths"]["/v1/jobs/{job_id}/stream"]["get"]
    assert list(stream["responses"]["200"]["content"]) == ["text/event-stream"]
    assert any(p["name"] == "Last-Event-ID" and p["in"] == "header" for p in stream["parameters"])


def test_list_parameters_carry_their_ranges(openapi_doc: dict[str, Any]) -> None:
    jobs = {p["name"]: p["schema"] for p in openapi_doc["paths"]["/v1/jobs"]["get"]["parameters"]}
    assert (jobs["limit"]["minimum"], jobs["limit"]["maximum"]) == (1, 200)
    assert set(jobs["status"]["enum"]) == {"queued", "running", "succeeded", "failed", "cancelled"}
    assert "cursor" in jobs
    usage = {p["name"]: p["schema"] for p in openapi_doc["paths"]["/v1/usage"]["get"]["parameters"]}
    assert set(usage) == {"from", "to", "group_by"}
    assert usage["group_by"]["enum"] == ["day", "skill", "model"]


def test_multipart_bodies(openapi_doc: dict[str, Any]) -> None:
    schemas = openapi_doc["components"]["schemas"]
    for path, fields in (("/v1/deployments", {"bundle", "notes", "activate"}),
                         ("/v1/drive/upload", {"file", "path"})):  # fmt: skip
        content = openapi_doc["paths"][path]["post"]["requestBody"]["content"]
        ref = content["multipart/form-data"]["schema"]["$ref"]
        body = schemas[ref.rsplit("/", 1)[-1]]
        assert fields <= set(body["properties"])
        assert body["required"] == [next(iter({"bundle", "file"} & fields))]


def test_jobout_has_every_j2_field(openapi_doc: dict[str, Any]) -> None:
    job = openapi_doc["components"]["schemas"]["JobOut"]
    assert set(job["required"]) == set(J2_FIELDS)
    assert set(job["properties"]) == set(J2_FIELDS) | {"held_reason"}
    assert {"type": "null"} in job["properties"]["held_reason"]["anyOf"]
    dep = openapi_doc["components"]["schemas"]["Deployment"]
    assert dep["properties"]["status"]["enum"] == ["building", "ready", "failed"]
    assert "status" not in dep["required"]
    assert "error" not in dep["required"]


async def test_the_app_serves_the_document_and_docs() -> None:
    app = create_app(Gateway(GatewaySettings(env="dev")))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as c:
        doc = await c.get("/openapi.json")
        assert doc.status_code == 200
        assert doc.json()["paths"]["/v1/jobs"]["post"]["operationId"] == "submit_job"
        docs = await c.get("/docs")
        assert docs.status_code == 200
        assert "/openapi.json" in docs.text


def test_the_drive_limits_are_the_drive_services(openapi_doc: dict[str, Any]) -> None:
    assert MAX_SIGN_TTL_S == DRIVE_MAX
    sign = openapi_doc["paths"]["/v1/drive/sign"]["get"]
    ttl = next(p for p in sign["parameters"] if p["name"] == "ttl")
    assert ttl["schema"]["maximum"] == DRIVE_MAX
