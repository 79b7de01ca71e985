"""The OpenAPI document of the /v1 API (SPEC §13), described declaratively.

The handlers in :mod:`puras_gateway.entrypoints.http` read raw bodies and answer with
msgspec bytes, so FastAPI cannot infer their contract. This module states it per
operation: parameters, request body, security, the typed 200 and every error status the
operation really returns (schemas in :mod:`~puras_gateway.entrypoints.openapi_schemas`).
A routed operation without a description is left out of the served document with a
warning in the log, and fails the contract tests (:func:`undescribed_routes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI
from fastapi.routing import APIRoute

from puras_common.logging import get_logger
from puras_common.manifest.skill_yaml import SKILL_NAME
from puras_gateway.domain.requests import (
    DEFAULT_LIST_LIMIT,
    JOB_STATUSES,
    MAX_IDEMPOTENCY_KEY,
    MAX_LIST_LIMIT,
    MAX_SKILL_NAME,
)
from puras_gateway.domain.usage_query import GROUP_BY
from puras_gateway.entrypoints.openapi_schemas import (
    STR,
    UUID,
    Json,
    components,
    ref,
)

__all__ = [
    "MAX_SIGN_TTL_S",
    "OPERATIONS",
    "SECURITY_SCHEMES",
    "build_openapi",
    "install_openapi",
    "undescribed_routes",
]

log = get_logger(__name__)

Security = Literal["key", "admin", "job", "none"]

MAX_SIGN_TTL_S = 7 * 24 * 3600
"""The drive's longest signed-URL ttl (``puras_drive.settings``; the gateway does not
import the drive service, and a contract test holds the two equal)."""

# -- operations ----------------------------------------------------------------------

_SSE_FRAMES = """Server-sent events, one frame per job event, in order:

```
event: <event type>
id: <event position>
data: {"id": <position>, "type": "<type>", "payload": {...}, "at": "<time>", "job_id": "<id>"}
```

The data is a `StreamFrame` (a `JobEvent` with the job's id); a reconnect sends the last
`id:` back as `Last-Event-ID`. Attached clients also get `event: model_delta` frames
(Z5: the model's text as generated, not stored), whose data is a `ModelDeltaFrame`
`{"type": "model_delta", "payload": {"step", "text"}}` and whose `id:` repeats the last
stored event's. The last frame is `event: end` whose data is the final `JobOut`; a
`: ping` comment comes every 15 s while nothing else does."""

_ERROR_MEANING = {
    400: "Malformed request (body, query or header); the message says what to fix.",
    401: "No or bad credentials.",
    403: "The signed link is invalid or expired.",
    404: "Not found, or not this project's.",
    409: "Conflict with the current state.",
    413: "Body too large.",
    422: "Inputs violate the skill's input_schema: `problems` lists each with its JSON path.",
    502: "The upstream failed.",
    503: "The service this call needs is not configured or not ready.",
    504: "The upstream call timed out.",
}


@dataclass(frozen=True, slots=True)
class Operation:
    """One operation of the document, keyed by (method, path) in :data:`OPERATIONS`."""

    op_id: str
    tag: str
    summary: str
    security: Security = "key"
    params: tuple[Json, ...] = ()
    body: Json | None = None
    body_required: bool = True
    ok: Json | None = None
    """The 200 response (a full response object)."""
    errors: tuple[int, ...] = (400,)
    description: str = ""
    error_notes: tuple[tuple[int, str], ...] = ()
    """What a status means for this operation, where the general meaning does not fit."""


def _json_ok(name: str, description: str = "OK") -> Json:
    return {"description": description, "content": {"application/json": {"schema": ref(name)}}}


def _json_body(name: str) -> Json:
    return {"application/json": {"schema": ref(name)}}


def _multipart(name: str) -> Json:
    return {"multipart/form-data": {"schema": ref(name)}}


def _path(name: str, schema: Json, description: str) -> Json:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        "description": description,
    }


def _query(name: str, schema: Json, description: str, required: bool = False) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


_JOB_ID = _path("job_id", UUID, "The job's id.")
_DEPLOYMENT_ID = _path("deployment_id", UUID, "The deployment's id.")
_PREFIX = _path("prefix", {"type": "string", "pattern": "^[A-Za-z0-9]{4,32}$"}, "The key's prefix.")
_SECRET_NAME = _path(
    "name", {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$"}, "The secret's name (X1)."
)
_PROJECT_ID = _path("project_id", UUID, "The project's id.")
_DRIVE_PATH = _query("path", STR, "A file's path in the project's drive.", required=True)
_DRIVE_PREFIX = _query("prefix", {"type": "string", "default": ""}, "A folder ('' the root).")
_BOOL_Q: Json = {"type": "boolean", "default": False}

_SUBMIT_DESCRIPTION = f"""Submit a job (J1). The body is JSON whatever the Content-Type.

* async (default): the JobOut with `status` `queued` at once;
* `wait=true`: the JobOut once terminal, or the current row when `timeout` passes;
* `stream=true`: `text/event-stream` of the job's events; the job id is in the
  `Puras-Job-Id` response header and in the first frame (Z6).

{_SSE_FRAMES}

The same `Idempotency-Key` with the same body returns the original job; with another
body it is a 409 (J10)."""

OPERATIONS: dict[tuple[str, str], Operation] = {
    # -- jobs --------------------------------------------------------------------------
    ("POST", "/v1/jobs"): Operation(
        "submit_job",
        "jobs",
        "Submit a job",
        params=(
            _query("wait", _BOOL_Q, "Answer once the job is terminal (or at `timeout`)."),
            _query(
                "timeout",
                {"type": "number", "minimum": 1, "maximum": 60, "default": 30},
                "Seconds `wait` waits at most (1-60).",
            ),
            _query("stream", _BOOL_Q, "Answer with the job's events as SSE."),
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
                "description": "Printable; scoped to the project, remembered 24 h (J10).",
            },
        ),
        body=_json_body("SubmitBody"),
        ok={
            "description": "The JobOut, or the event stream with `stream=true`.",
            "headers": {
                "Puras-Job-Id": {
                    "description": "With `stream=true`: the new job's id (Z6).",
                    "schema": UUID,
                }
            },
            "content": {
                "application/json": {"schema": ref("JobOut")},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        },
        errors=(400, 401, 404, 409, 413, 422, 503),
        description=_SUBMIT_DESCRIPTION,
    ),
    ("GET", "/v1/jobs"): Operation(
        "list_jobs",
        "jobs",
        "List jobs, newest first",
        params=(
            _query("status", {"type": "string", "enum": list(JOB_STATUSES)}, "Only jobs in it."),
            _query(
                "skill",
                {"type": "string", "pattern": SKILL_NAME.pattern, "maxLength": MAX_SKILL_NAME},
                "Only jobs of this skill.",
            ),
            _query(
                "limit",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIST_LIMIT,
                    "default": DEFAULT_LIST_LIMIT,
                },
                "Page size.",
            ),
            _query("cursor", STR, "`next_cursor` of the previous page, as it came."),
        ),
        ok=_json_ok("JobList"),
        errors=(400, 401),
    ),
    ("GET", "/v1/jobs/{job_id}"): Operation(
        "get_job",
        "jobs",
        "One job",
        params=(_JOB_ID,),
        ok=_json_ok("JobOut"),
        errors=(400, 401, 404),
    ),
    ("GET", "/v1/jobs/{job_id}/events"): Operation(
        "list_job_events",
        "jobs",
        "The job's events so far",
        params=(_JOB_ID,),
        ok=_json_ok("JobEventList"),
        errors=(400, 401, 404),
    ),
    ("GET", "/v1/jobs/{job_id}/stream"): Operation(
        "stream_job",
        "jobs",
        "Attach to the job's events (SSE)",
        params=(
            _JOB_ID,
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
                "description": "Resume after this event: nothing lost or repeated.",
            },
            _query(
                "last_event_id",
                {"type": "string", "pattern": "^[0-9]+$"},
                "The same as `Last-Event-ID`, for clients that cannot set headers.",
            ),
        ),
        ok={
            "description": "The event stream.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        errors=(400, 401, 404),
        description=_SSE_FRAMES,
    ),
    ("GET", "/v1/jobs/{job_id}/usage"): Operation(
        "get_job_usage",
        "jobs",
        "The job's billed calls (J8)",
        params=(_JOB_ID,),
        ok=_json_ok("JobUsage"),
        errors=(400, 401, 404),
    ),
    ("POST", "/v1/jobs/{job_id}/cancel"): Operation(
        "cancel_job",
        "jobs",
        "Cancel a job (J6)",
        params=(_JOB_ID,),
        ok=_json_ok("JobOut"),
        errors=(400, 401, 404, 409),
        description="Cancelling a cancelled job is a no-op; a finished one is a 409.",
    ),
    ("POST", "/v1/jobs/{job_id}/feedback"): Operation(
        "give_feedback",
        "feedback",
        "Record feedback on a job (J9)",
        params=(_JOB_ID,),
        body=_json_body("FeedbackBody"),
        ok=_json_ok("Feedback"),
        errors=(400, 401, 404, 413),
        description="One row per (job, end_user_id): a second call replaces the first.",
    ),
    ("GET", "/v1/jobs/{job_id}/feedback"): Operation(
        "list_feedback",
        "feedback",
        "A job's feedback, newest first",
        params=(_JOB_ID,),
        ok=_json_ok("FeedbackList"),
        errors=(400, 401, 404),
    ),
    ("GET", "/v1/jobs/{job_id}/feedback/stats"): Operation(
        "feedback_stats",
        "feedback",
        "A job's feedback counts",
        params=(_JOB_ID,),
        ok=_json_ok("FeedbackStats"),
        errors=(400, 401, 404),
    ),
    # -- deployments -------------------------------------------------------------------
    ("POST", "/v1/deployments"): Operation(
        "create_deployment",
        "deployments",
        "Push a deployment (P1)",
        params=(
            _query(
                "wait",
                _BOOL_Q,
                "Wait for the build of requirements.txt (default true); false answers at once "
                "with `status: building`. The `wait` form field says the same.",
            ),
        ),
        body=_multipart("DeploymentUpload"),
        ok=_json_ok("Deployment"),
        errors=(400, 401, 404, 409, 413, 422),
        description="A bundle that fails validation is a 400 whose `problems` name file and "
        "field. With a `requirements.txt` the deployment is built first (Z7): a failed build "
        "is a 422 `build_failed` carrying the `deployment` (status `failed`, its `error`), "
        "never activated.",
        error_notes=(
            (404, "The deployment was deleted while it was being built."),
            (422, "The build of requirements.txt failed (`build_failed`)."),
        ),
    ),
    ("GET", "/v1/deployments"): Operation(
        "list_deployments",
        "deployments",
        "Deployments, newest first",
        ok=_json_ok("DeploymentList"),
        errors=(400, 401),
    ),
    ("POST", "/v1/deployments/{deployment_id}/activate"): Operation(
        "activate_deployment",
        "deployments",
        "Activate a deployment (or roll back to it)",
        params=(_DEPLOYMENT_ID,),
        ok=_json_ok("Deployment"),
        errors=(400, 401, 404, 409),
    ),
    ("DELETE", "/v1/deployments/{deployment_id}"): Operation(
        "delete_deployment",
        "deployments",
        "Delete a deployment that is not active",
        params=(_DEPLOYMENT_ID,),
        ok=_json_ok("DeploymentDeleted"),
        errors=(400, 401, 404, 409),
    ),
    ("GET", "/v1/skills"): Operation(
        "list_skills",
        "deployments",
        "Skills of the active deployment, with their schemas",
        ok=_json_ok("SkillList"),
        errors=(400, 401),
    ),
    # -- keys and billing --------------------------------------------------------------
    ("POST", "/v1/keys"): Operation(
        "create_key",
        "keys",
        "Create an API key (shown once)",
        body=_json_body("CreateKeyBody"),
        body_required=False,
        ok=_json_ok("CreatedKey"),
        errors=(400, 401, 413),
    ),
    ("GET", "/v1/keys"): Operation(
        "list_keys",
        "keys",
        "The project's keys (prefixes only)",
        ok=_json_ok("KeyList"),
        errors=(400, 401),
    ),
    ("DELETE", "/v1/keys/{prefix}"): Operation(
        "revoke_key",
        "keys",
        "Revoke a key (fails at once)",
        params=(_PREFIX,),
        ok=_json_ok("RevokedKey"),
        errors=(400, 401, 404),
    ),
    ("PUT", "/v1/keys/{prefix}/spend_limit"): Operation(
        "set_spend_limit",
        "keys",
        "Set a key's spend limit (Z1)",
        params=(_PREFIX,),
        body=_json_body("SpendLimitBody"),
        ok=_json_ok("KeySpendLimit"),
        errors=(400, 401, 404, 413),
    ),
    ("DELETE", "/v1/keys/{prefix}/spend_limit"): Operation(
        "lift_spend_limit",
        "keys",
        "Lift a key's spend limit",
        params=(_PREFIX,),
        ok=_json_ok("KeySpendLimit"),
        errors=(400, 401, 404),
    ),
    ("GET", "/v1/billing/policy"): Operation(
        "get_billing_policy",
        "billing",
        "The project's billing policy",
        ok=_json_ok("BillingPolicy"),
        errors=(400, 401),
    ),
    ("PUT", "/v1/billing/policy"): Operation(
        "set_billing_policy",
        "billing",
        "Set the project's billing policy",
        body=_json_body("PolicyBody"),
        ok=_json_ok("BillingPolicy"),
        errors=(400, 401, 413),
    ),
    ("GET", "/v1/billing/balance"): Operation(
        "get_balance",
        "billing",
        "The project's credit balance",
        ok=_json_ok("Balance"),
        errors=(400, 401),
    ),
    ("GET", "/v1/usage"): Operation(
        "get_usage",
        "billing",
        "Usage over time (Z2)",
        params=(
            _query(
                "from",
                STR,
                "ISO 8601 date or datetime, included (default: 30 days before `to`).",
            ),
            _query("to", STR, "ISO 8601 date or datetime, excluded (default: now)."),
            _query(
                "group_by",
                {"type": "string", "enum": list(GROUP_BY), "default": "day"},
                "How rows are keyed.",
            ),
        ),
        ok=_json_ok("UsageReport"),
        errors=(400, 401),
        description="A range is at most 366 days; any other query parameter is a 400.",
    ),
    # -- secrets -----------------------------------------------------------------------
    ("GET", "/v1/secrets"): Operation(
        "list_secrets",
        "secrets",
        "Secret names (never values)",
        ok=_json_ok("SecretList"),
        errors=(400, 401, 503),
    ),
    ("PUT", "/v1/secrets/{name}"): Operation(
        "set_secret",
        "secrets",
        "Create or overwrite a secret",
        params=(_SECRET_NAME,),
        body=_json_body("SecretBody"),
        ok=_json_ok("Secret"),
        errors=(400, 401, 413, 503),
    ),
    ("DELETE", "/v1/secrets/{name}"): Operation(
        "delete_secret",
        "secrets",
        "Delete a secret",
        params=(_SECRET_NAME,),
        ok=_json_ok("SecretDeleted"),
        errors=(400, 401, 404, 503),
    ),
    # -- drive (D2-D7) -----------------------------------------------------------------
    ("POST", "/v1/drive/upload"): Operation(
        "drive_upload",
        "drive",
        "Upload a file (D2, at most 50 MB)",
        body=_multipart("DriveUpload"),
        ok=_json_ok("DriveUploaded"),
        errors=(400, 401, 413, 503),
    ),
    ("GET", "/v1/drive/list"): Operation(
        "drive_list",
        "drive",
        "Direct children of a folder (D3)",
        params=(_DRIVE_PREFIX,),
        ok=_json_ok("DriveListing"),
        errors=(400, 401, 503),
    ),
    ("GET", "/v1/drive/sign"): Operation(
        "drive_sign",
        "drive",
        "A short-lived signed URL of a file (D4)",
        params=(
            _DRIVE_PATH,
            _query(
                "ttl",
                {"type": "integer", "minimum": 1, "maximum": MAX_SIGN_TTL_S},
                "Seconds the URL is valid (default: the drive's PURAS_DRIVE_SIGN_TTL_S).",
            ),
        ),
        ok=_json_ok("SignedUrl"),
        errors=(400, 401, 404, 503),
    ),
    ("POST", "/v1/drive/share"): Operation(
        "drive_share",
        "drive",
        "A long-lived (10 years) URL of a file (D4)",
        params=(_DRIVE_PATH,),
        ok=_json_ok("SignedUrl"),
        errors=(400, 401, 404, 503),
    ),
    ("DELETE", "/v1/drive/object"): Operation(
        "drive_delete",
        "drive",
        "Delete a file, or a folder recursively (D5)",
        params=(_query("path", STR, "A file, or a folder (ending in `/`).", required=True),),
        ok=_json_ok("DriveDeleted"),
        errors=(400, 401, 404, 503),
    ),
    ("GET", "/v1/drive/zip"): Operation(
        "drive_zip",
        "drive",
        "A folder as a zip (D6)",
        params=(_DRIVE_PREFIX,),
        ok={
            "description": "The zip, its root folder the prefix's last segment.",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        errors=(400, 401, 404, 503),
    ),
    ("GET", "/v1/drive/origin"): Operation(
        "drive_origin",
        "drive",
        "Which job wrote a file (D7)",
        params=(_DRIVE_PATH,),
        ok=_json_ok("DriveOrigin"),
        errors=(400, 401, 404, 503),
    ),
    ("GET", "/v1/drive/file/{rest}"): Operation(
        "drive_file",
        "drive",
        "A file by its signed URL (no key: the URL is the proof)",
        security="none",
        params=(
            _path("rest", STR, "<project id>/<path>, as the signed URL has it."),
            _query("expires", STR, "From the signed URL.", required=True),
            _query("sig", STR, "From the signed URL.", required=True),
        ),
        ok={
            "description": "The file's bytes, with its content type.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        errors=(400, 403, 404, 503),
    ),
    # -- pricing and media -------------------------------------------------------------
    ("GET", "/v1/pricing"): Operation(
        "get_pricing",
        "billing",
        "Every model and media slug with its rates (B2)",
        security="none",
        ok=_json_ok("Pricing"),
        errors=(400,),
    ),
    ("POST", "/v1/media/generate"): Operation(
        "media_generate",
        "media",
        "Generate media from inside a job (S2)",
        security="job",
        body=_json_body("MediaRequest"),
        ok=_json_ok("MediaResult"),
        errors=(400, 401, 409, 413, 422, 502, 503, 504),
        error_notes=(
            (409, "The call would pass the job's cost cap (`cost_cap_reached`)."),
            (422, "The model refused the inputs (`media_inputs_refused`)."),
            (502, "The media model failed or its output could not be read."),
        ),
    ),
    # -- admin -------------------------------------------------------------------------
    ("POST", "/v1/admin/projects"): Operation(
        "admin_create_project",
        "admin",
        "Create a project",
        security="admin",
        body=_json_body("CreateProjectBody"),
        ok=_json_ok("Project"),
        errors=(400, 401, 413),
    ),
    ("GET", "/v1/admin/projects"): Operation(
        "admin_list_projects",
        "admin",
        "Every project, newest first",
        security="admin",
        ok=_json_ok("ProjectList"),
        errors=(400, 401),
    ),
    ("GET", "/v1/admin/projects/{project_id}/keys"): Operation(
        "admin_list_keys",
        "admin",
        "A project's keys (prefixes only)",
        security="admin",
        params=(_PROJECT_ID,),
        ok=_json_ok("KeyList"),
        errors=(400, 401, 404),
    ),
    ("DELETE", "/v1/admin/projects/{project_id}/keys/{prefix}"): Operation(
        "admin_revoke_key",
        "admin",
        "Revoke a project's key (a lost or leaked one)",
        security="admin",
        params=(_PROJECT_ID, _PREFIX),
        ok=_json_ok("RevokedKey"),
        errors=(400, 401, 404),
    ),
    ("POST", "/v1/admin/projects/{project_id}/keys"): Operation(
        "admin_create_key",
        "admin",
        "Create a key of a project",
        security="admin",
        params=(_PROJECT_ID,),
        body=_json_body("CreateKeyBody"),
        body_required=False,
        ok=_json_ok("CreatedKey"),
        errors=(400, 401, 404, 413),
    ),
    ("POST", "/v1/admin/projects/{project_id}/credits"): Operation(
        "admin_grant_credits",
        "admin",
        "Grant credit (B4)",
        security="admin",
        params=(_PROJECT_ID,),
        body=_json_body("GrantBody"),
        ok=_json_ok("Grant"),
        errors=(400, 401, 404, 413),
        description='Exactly one of {"usd": <amount>} or {"micros": <integer>}.',
    ),
    ("POST", "/v1/admin/secrets/rotate"): Operation(
        "admin_rotate_secrets",
        "admin",
        "Re-seal every secret under the current master key",
        security="admin",
        ok=_json_ok("SecretsRotated"),
        errors=(400, 401, 503),
    ),
    ("POST", "/v1/admin/audit"): Operation(
        "admin_audit",
        "admin",
        "Replay the log and diff it against the tables (Z3)",
        security="admin",
        params=(
            _query(
                "settle",
                {"type": "number", "minimum": 0},
                "Seconds to wait for the live projections to reach the log.",
            ),
        ),
        ok=_json_ok("AuditReport", "The report, clean or not (`clean` says which)."),
        errors=(400, 401, 409, 503),
    ),
}

_SECURITY: dict[Security, list[Json]] = {
    "key": [{"projectKey": []}],
    "admin": [{"adminToken": []}],
    "job": [{"jobToken": []}],
    "none": [],
}

SECURITY_SCHEMES: Json = {
    "projectKey": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "puras_live_<prefix>.<secret>",
        "description": "A project API key (T1).",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's admin token, from the server's environment (T3).",
    },
    "jobToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The job service token a running job holds (PURAS_JOB_TOKEN).",
    },
}


def _operation(op: Operation) -> Json:
    responses: Json = {"200": op.ok or {"description": "OK"}}
    notes = dict(op.error_notes)
    for status in op.errors:
        responses[str(status)] = {
            "description": notes.get(status, _ERROR_MEANING[status]),
            "content": {"application/json": {"schema": ref("Error")}},
        }
    out: Json = {
        "operationId": op.op_id,
        "tags": [op.tag],
        "summary": op.summary,
        "security": _SECURITY[op.security],
        "responses": responses,
    }
    if op.description:
        out["description"] = op.description
    if op.params:
        out["parameters"] = list(op.params)
    if op.body is not None:
        out["requestBody"] = {"required": op.body_required, "content": op.body}
    return out


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in sorted(route.methods or ()):
                found.append((method, route.path_format))
    return found


def undescribed_routes(app: FastAPI) -> list[str]:
    """Routes of ``app`` that :data:`OPERATIONS` does not describe (the tests want none)."""
    return [f"{m} {p}" for m, p in _routes(app) if (m, p) not in OPERATIONS]


def build_openapi(app: FastAPI) -> Json:
    """The document of ``app``'s routes, each described by :data:`OPERATIONS`."""
    paths: Json = {}
    for method, path in _routes(app):
        op = OPERATIONS.get((method, path))
        if op is not None:
            paths.setdefault(path, {})[method.lower()] = _operation(op)
    missing = undescribed_routes(app)
    if missing:
        # Served without them rather than not at all; the contract tests fail on this.
        log.warning("routes missing from the OpenAPI document", routes=missing)
    return {
        "openapi": app.openapi_version,
        "info": {"title": app.title, "version": app.version, "description": app.description},
        "paths": paths,
        "components": {"schemas": components(), "securitySchemes": SECURITY_SCHEMES},
    }


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_openapi` at ``/openapi.json`` (and so at ``/docs``), built once."""

    def openapi() -> Json:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
