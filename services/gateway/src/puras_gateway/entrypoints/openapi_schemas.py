"""The component schemas of the OpenAPI document (SPEC §13).

Request bodies come from the msgspec types the handlers decode with, so a field added
there shows up here, and JobOut from the fold msgspec encodes (J2); the other response
shapes are written out as the use cases build them (they return plain dicts).
"""

from __future__ import annotations

from typing import Any

import msgspec

from puras_common.events.types import JobRecord
from puras_gateway.app.admin import (
    MAX_LIMIT_MICROS,
    CreateKeyBody,
    CreateProjectBody,
    GrantBody,
    PolicyBody,
    SpendLimitBody,
)
from puras_gateway.domain.feedback import MAX_COMMENT_CHARS, MAX_END_USER_ID_CHARS
from puras_gateway.domain.requests import JOB_STATUSES, SubmitBody
from puras_gateway.domain.usage_query import GROUP_BY

__all__ = ["BOOL", "INT", "J2_FIELDS", "STR", "UUID", "Json", "components", "nullable", "ref"]

Json = dict[str, Any]

REF = "#/components/schemas/{name}"


def ref(name: str) -> Json:
    return {"$ref": REF.format(name=name)}


def nullable(schema: Json) -> Json:
    return {"anyOf": [schema, {"type": "null"}]}


STR: Json = {"type": "string"}
INT: Json = {"type": "integer"}
BOOL: Json = {"type": "boolean"}
OBJ: Json = {"type": "object"}
TIME: Json = {"type": "string", "format": "date-time"}
UUID: Json = {"type": "string", "format": "uuid"}


def _obj(props: Json, required: tuple[str, ...] | None = None, **extra: Any) -> Json:
    """An object schema; every property is required unless ``required`` says otherwise."""
    req = list(props) if required is None else list(required)
    return {"type": "object", "properties": props, "required": req, **extra}


def _list_of(key: str, item: Json) -> Json:
    return _obj({key: {"type": "array", "items": item}})


# -- request bodies: the msgspec types the handlers decode with ------------------------

_REQUEST_TYPES: tuple[type[msgspec.Struct], ...] = (
    SubmitBody,
    SpendLimitBody,
    CreateKeyBody,
    PolicyBody,
    CreateProjectBody,
    GrantBody,
)


def _request_schemas() -> Json:
    _, found = msgspec.json.schema_components(_REQUEST_TYPES, ref_template=REF)
    return found


# -- JobOut (J2): the fold msgspec encodes, with every J2 field always present -----------

J2_FIELDS = (
    "id",
    "project_id",
    "skill",
    "status",
    "inputs",
    "result",
    "error",
    "cost_micros",
    "deployment_id",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
)
_TIME_FIELDS = ("created_at", "started_at", "finished_at")


def _job_out() -> Json:
    _, found = msgspec.json.schema_components((JobRecord,), ref_template=REF)
    schema: Json = found["JobRecord"]
    schema["title"] = "JobOut"
    props: Json = schema["properties"]
    props["status"] = {"type": "string", "enum": list(JOB_STATUSES)}
    props["id"] = dict(UUID)
    for name in _TIME_FIELDS:
        props[name] = dict(TIME) if name == "created_at" else nullable(TIME)
    # Z8: why a queued job waits (credit); absent from older rows, so not required.
    props.setdefault("held_reason", nullable(STR))
    for p in props.values():
        p.pop("default", None)
    # job_out() encodes every field, defaults included: a client can rely on all of J2.
    schema["required"] = list(J2_FIELDS)
    return schema


# -- response schemas ----------------------------------------------------------------

_SPEND_LIMIT: Json = _obj(
    {
        "micros": {"type": "integer", "exclusiveMinimum": 0, "maximum": MAX_LIMIT_MICROS},
        "period": {"type": "string", "enum": ["day", "month"]},
    }
)

_SKILL_SUMMARY: Json = _obj(
    {
        "name": STR,
        "kind": {"type": "string", "enum": ["deterministic", "agentic"]},
        "description": STR,
    }
)

_DRIVE_FILE: Json = _obj(
    {
        "name": STR,
        "path": STR,
        "bytes": INT,
        "content_type": STR,
        "created_at": TIME,
        "updated_at": TIME,
    }
)


_EVENT: Json = {
    "id": {"type": "integer", "minimum": 1, "description": "Position in the job."},
    "type": {
        "type": "string",
        "description": "queued, started, log, agent_start, model_response, tool_call, "
        "tool_result, cost, succeeded, failed, cancelled (and model_delta on streams)",
    },
    "payload": {
        "type": "object",
        "description": "The event's data; a terminal event's is the JobOut.",
    },
    "at": TIME,
}
"""A job event (J5): ``id`` is its position in the job's stream."""


def _response_schemas() -> Json:
    return {
        "Error": _obj(
            {
                "error": _obj(
                    {
                        "code": {"type": "string", "description": "A stable machine code."},
                        "message": {"type": "string", "description": "What to fix."},
                    },
                    # Some errors add context: `problems` (422, invalid bundle),
                    # `available_skills` (unknown skill), `job_status`, `job_id`.
                    additionalProperties=True,
                )
            },
            description='Every error: {"error": {"code", "message", ...}}.',
        ),
        "JobOut": _job_out(),
        "JobList": _obj(
            {"jobs": {"type": "array", "items": ref("JobOut")}, "next_cursor": nullable(STR)},
            description="Newest first; pass `next_cursor` as `cursor` for the next page.",
        ),
        "JobEvent": _obj(_EVENT),
        "JobEventList": _list_of("events", ref("JobEvent")),
        "StreamFrame": _obj(
            {**_EVENT, "job_id": {**UUID, "description": "The job the frame is of."}},
            required=tuple(_EVENT),
            description="The data of an SSE event frame (the `end` frame's is a JobOut).",
        ),
        "ModelDeltaFrame": _obj(
            {
                "type": {"type": "string", "const": "model_delta"},
                "payload": _obj({"step": {"type": "integer", "minimum": 1}, "text": STR}),
            },
            description="The data of a live `model_delta` frame (Z5): never stored.",
        ),
        "JobUsageLine": _obj(
            {
                "provider": STR,
                "model": STR,
                "input_tokens": INT,
                "output_tokens": INT,
                "cache_read_tokens": INT,
                "cache_write_tokens": INT,
                "billed_micros": INT,
                "step": INT,
                "registry_version": STR,
                "at": TIME,
            },
            required=("provider", "model", "input_tokens", "output_tokens", "billed_micros"),
        ),
        "JobUsage": _list_of("usage", ref("JobUsageLine")),
        "Feedback": _obj(
            {
                "job_id": UUID,
                "end_user_id": STR,
                "rating": {"type": "integer", "enum": [-1, 0, 1]},
                "comment": STR,
                "created_at": TIME,
                "updated_at": TIME,
            }
        ),
        "FeedbackList": _list_of("feedback", ref("Feedback")),
        "FeedbackStats": _obj(
            {"up": INT, "down": INT, "count": INT, "score": INT},
            description="score = up - down",
        ),
        "SkillSummary": _SKILL_SUMMARY,
        "Deployment": _obj(
            {
                "id": UUID,
                "notes": STR,
                "created_at": TIME,
                "active": BOOL,
                "activated_at": nullable(TIME),
                "bundle_size": INT,
                "skills": {"type": "array", "items": ref("SkillSummary")},
                "status": {"type": "string", "enum": ["building", "ready", "failed"]},
                "error": nullable(STR),
            },
            required=("id", "notes", "created_at", "active", "bundle_size", "skills"),
        ),
        "DeploymentList": _list_of("deployments", ref("Deployment")),
        "DeploymentDeleted": _obj({"id": UUID, "deleted": {"type": "boolean", "const": True}}),
        "SkillDetail": _obj(
            {
                "name": STR,
                "kind": {"type": "string", "enum": ["deterministic", "agentic"]},
                "entrypoint": STR,
                "description": STR,
                "model": nullable(STR),
                "disable_bash": BOOL,
                "input_schema": nullable(OBJ),
                "output_schema": nullable(OBJ),
                "tools": {"type": "array", "items": STR},
                "timeout_seconds": nullable({"type": "number"}),
                "max_steps": nullable(INT),
                "max_cost_micros": nullable(INT),
            },
            required=("name", "kind", "entrypoint", "description"),
        ),
        "SkillList": _obj(
            {
                "deployment_id": nullable(UUID),
                "skills": {"type": "array", "items": ref("SkillDetail")},
            }
        ),
        "SpendLimitOut": _SPEND_LIMIT,
        "CreatedKey": _obj(
            {
                "key": {"type": "string", "description": "Shown once; only a hash is kept."},
                "prefix": STR,
                "spend_limit": ref("SpendLimitOut"),
            },
            required=("key", "prefix"),
        ),
        "KeyInfo": _obj(
            {
                "prefix": STR,
                "created_at": TIME,
                "last_used_at": nullable(TIME),
                "spend_limit": nullable(ref("SpendLimitOut")),
                "spent_micros": {
                    "type": "integer",
                    "description": "Charged this period (only with a spend limit).",
                },
            },
            required=("prefix", "created_at", "last_used_at", "spend_limit"),
        ),
        "KeyList": _list_of("keys", ref("KeyInfo")),
        "KeySpendLimit": _obj({"prefix": STR, "spend_limit": nullable(ref("SpendLimitOut"))}),
        "RevokedKey": _obj({"prefix": STR, "revoked": {"type": "boolean", "const": True}}),
        "BillingPolicy": _obj({"stop_agents_at_zero": BOOL}),
        "Balance": _obj({"credit_balance_micros": INT}),
        "UsageRow": _obj(
            {
                "key": {"type": "string", "description": "The day, skill or model."},
                "billed_micros": INT,
                "calls": INT,
                "input_tokens": INT,
                "output_tokens": INT,
            }
        ),
        "UsageReport": _obj(
            {
                "usage": {"type": "array", "items": ref("UsageRow")},
                "from": TIME,
                "to": TIME,
                "group_by": {"type": "string", "enum": list(GROUP_BY)},
            }
        ),
        "SecretBody": _obj(
            {"value": {"type": "string", "minLength": 1}}, additionalProperties=False
        ),
        "Secret": _obj({"name": STR, "created_at": TIME, "updated_at": TIME}, required=("name",)),
        "SecretList": _list_of("secrets", ref("Secret")),
        "SecretDeleted": _obj({"name": STR, "deleted": {"type": "boolean", "const": True}}),
        "FeedbackBody": {
            "type": "object",
            "properties": {
                "rating": {"type": "integer", "enum": [-1, 0, 1], "default": 0},
                "comment": {"type": "string", "maxLength": MAX_COMMENT_CHARS, "default": ""},
                "end_user_id": {
                    "type": "string",
                    "maxLength": MAX_END_USER_ID_CHARS,
                    "default": "",
                },
            },
            "additionalProperties": False,
            "description": "A non-zero rating or a non-empty comment is required (J9).",
        },
        "DeploymentUpload": {
            "type": "object",
            "properties": {
                "bundle": {
                    "type": "string",
                    "format": "binary",
                    "description": "The project zip.",
                },
                "notes": {"type": "string", "default": ""},
                "activate": {"type": "boolean", "default": True},
                "wait": {
                    "type": "boolean",
                    "default": True,
                    "description": "Wait for the requirements.txt build (Z7); false answers "
                    "at once with status `building` (also the query parameter `?wait=false`).",
                },
            },
            "required": ["bundle"],
        },
        "DriveUpload": {
            "type": "object",
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "path": {
                    "type": "string",
                    "description": "Empty: uploads/<uuid>.<ext>; ending in `/`: that "
                    "folder plus the file's own name; otherwise that exact path.",
                },
            },
            "required": ["file"],
        },
        "DriveUploaded": _obj(
            {
                "drive_path": STR,
                "full_path": STR,
                "signed_url": STR,
                "bytes": INT,
                "content_type": STR,
            }
        ),
        "DriveFolder": _obj({"name": STR, "path": STR}),
        "DriveFile": _DRIVE_FILE,
        "DriveListing": _obj(
            {
                "prefix": STR,
                "folders": {"type": "array", "items": ref("DriveFolder")},
                "files": {"type": "array", "items": ref("DriveFile")},
            }
        ),
        "SignedUrl": _obj({"url": STR, "expires_at": TIME}),
        "DriveDeleted": _obj({"deleted": {"type": "integer", "minimum": 0}}),
        "DriveOrigin": _obj(
            {
                "job_id": nullable(UUID),
                "skill_name": nullable(STR),
                "tool": nullable(STR),
                "created_at": nullable(TIME),
            },
            description="All null for a file that was uploaded, not written by a job.",
        ),
        "Pricing": _obj(
            {
                "version": STR,
                "margin_pct": {"type": "number"},
                "models": {"type": "array", "items": ref("ModelPrice")},
                "media": {"type": "array", "items": ref("MediaPrice")},
            }
        ),
        "ModelPrice": _obj(
            {
                "slug": STR,
                "family": STR,
                "kind": STR,
                "shape": STR,
                "unit": STR,
                "rates": {"type": "object", "description": "Per rate name: {micros, usd}."},
            }
        ),
        "MediaPrice": _obj(
            {
                "slug": STR,
                "kind": STR,
                "shape": STR,
                "unit": STR,
                "rate": {"type": "object", "description": "The default row: {micros, usd}."},
                "conditional": BOOL,
                "conditions": {"type": "array", "items": OBJ},
                "rates": {"type": "array", "items": OBJ},
                "count_input": nullable(STR),
            },
            required=("slug", "kind", "shape", "unit"),
        ),
        "MediaRequest": _obj(
            {
                "model": {"type": "string", "description": "A media slug of GET /v1/pricing."},
                "inputs": OBJ,
                "kind": STR,
                "output_path": STR,
                "output_url_path": STR,
            },
            required=("model", "inputs"),
        ),
        "MediaResult": {
            "type": "object",
            "properties": {
                "model": STR,
                "kind": STR,
                "drive_path": STR,
                "output_url": nullable(STR),
                "request_id": STR,
                "billed_micros": INT,
                "billed_usd": {"type": "number"},
                "meta": OBJ,
            },
            "required": ["drive_path", "output_url"],
            "description": "The saved output (and what the media call reported about it).",
        },
        "Project": _obj({"id": UUID, "name": STR}),
        "ProjectSummary": _obj(
            {
                "id": UUID,
                "name": STR,
                "created_at": TIME,
                "active_keys": INT,
                "credit_balance_micros": INT,
            }
        ),
        "ProjectList": _list_of("projects", ref("ProjectSummary")),
        "Grant": _obj(
            {
                "project_id": UUID,
                "grant_id": UUID,
                "granted_micros": INT,
                "credit_balance_micros": INT,
            },
            required=("project_id", "grant_id", "granted_micros"),
        ),
        "SecretsRotated": _obj(
            {
                "key_id": STR,
                "resealed": INT,
                "changed_meanwhile": INT,
                "unreadable": {
                    "type": "array",
                    "items": _obj({"project_id": UUID, "name": STR, "key_id": STR}),
                },
            }
        ),
        "AuditReport": _obj(
            {
                "clean": BOOL,
                "differences": {"type": "array", "items": {}},
                "events": INT,
                "tables": {"type": "array", "items": OBJ},
            },
            required=("clean", "differences"),
            description="Z3: every difference between a replay of the log and the tables.",
        ),
    }


def components() -> Json:
    """Every schema of the document, by name."""
    return {**_request_schemas(), **_response_schemas()}
