"""Every call of the ``/v1`` API the CLI and the MCP server make, one function each.

A function here builds a :class:`Call` (method, path, query, body) and performs nothing:
the synchronous client runs it for the CLI, the asynchronous one for the MCP server, so
each path and body is spelled in one place whichever front end sends it. Ids that come
from a person's input are quoted into a single path segment: they never add a segment or
a query.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

from puras_client.errors import ClientError

__all__ = [
    "DEFAULT_WAIT_S",
    "SECRET_NAME_RE",
    "WAIT_MAX_S",
    "Call",
    "activate_deployment",
    "balance",
    "cancel_job",
    "check_secret_name",
    "create_key",
    "create_project",
    "create_project_key",
    "delete_deployment",
    "delete_secret",
    "drive_sign",
    "drive_upload",
    "feedback_stats",
    "get_job",
    "grant_credits",
    "job_events",
    "job_stream_path",
    "job_usage",
    "list_deployments",
    "list_feedback",
    "list_jobs",
    "list_keys",
    "list_secrets",
    "list_skills",
    "push_bundle",
    "revoke_key",
    "seg",
    "set_secret",
    "submit_feedback",
    "submit_job",
    "usage",
]

WAIT_MAX_S: Final = 60
"""The gateway's ceiling for ``POST /v1/jobs?wait=true&timeout=N`` (J1)."""
DEFAULT_WAIT_S: Final = 30
"""What the gateway waits when ``wait`` comes without ``timeout`` (J4)."""
_HTTP_SLACK_S: Final = 15.0
"""How much longer than the server-side wait the HTTP call may take (queueing, network)."""
SECRET_NAME_RE: Final = re.compile(r"^[A-Z_][A-Z0-9_]*$")
"""X1: what a secret may be called (it becomes an environment variable's name)."""


@dataclass(frozen=True)
class Call:
    """One request, not sent yet."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    """The query; ``None`` values are left out."""
    json_body: Any = None
    files: Mapping[str, Any] | None = None
    data: Mapping[str, str] | None = None
    timeout: float | None = None
    """Seconds for this call, when it may take longer than a plain one."""
    headers: Mapping[str, str] | None = None


def seg(value: str) -> str:
    """One path segment of an id typed by a person."""
    return quote(value, safe="")


# -- deployments (P1, P3) ---------------------------------------------------------------


PUSH_TIMEOUT_S = 720.0
"""How long a waiting push may take: the gateway waits up to its ``build_wait_s``
(660 s by default) for a ``requirements.txt`` build before it answers ``building``."""


def push_bundle(
    bundle: bytes, *, notes: str = "", activate: bool = True, wait: bool = True
) -> Call:
    """``POST /v1/deployments`` with the zip as the ``bundle`` file; ``wait=False``
    answers at once with the deployment ``building`` when it has a build to run."""
    return Call(
        "POST",
        "/v1/deployments",
        files={"bundle": ("bundle.zip", bundle, "application/zip")},
        data={
            "notes": notes,
            "activate": "true" if activate else "false",
            "wait": "true" if wait else "false",
        },
        # A waiting push lasts as long as the venv build behind it.
        timeout=PUSH_TIMEOUT_S if wait else 120.0,
    )


def list_deployments() -> Call:
    return Call("GET", "/v1/deployments")


def list_skills() -> Call:
    """The active deployment's skills with their schemas."""
    return Call("GET", "/v1/skills")


def activate_deployment(deployment_id: str) -> Call:
    return Call("POST", f"/v1/deployments/{seg(deployment_id)}/activate")


def delete_deployment(deployment_id: str) -> Call:
    return Call("DELETE", f"/v1/deployments/{seg(deployment_id)}")


# -- jobs (J1-J8) -----------------------------------------------------------------------


def submit_job(
    skill: str,
    inputs: Mapping[str, Any],
    *,
    wait: bool = False,
    timeout: int | None = None,
    idempotency_key: str | None = None,
    max_cost_micros: int | None = None,
) -> Call:
    """``POST /v1/jobs``: queued at once, or with ``wait`` the JobOut once terminal (or as
    it stands after ``timeout`` seconds, 1 to :data:`WAIT_MAX_S`). The same
    ``idempotency_key`` with the same body gives back the same job (J10); ``max_cost_micros``
    caps what the job may spend (Z1)."""
    params: dict[str, str] = {}
    http_timeout: float | None = None
    if wait:
        params["wait"] = "true"
        if timeout is not None:
            if not 1 <= timeout <= WAIT_MAX_S:
                raise ClientError(
                    f"the wait timeout must be between 1 and {WAIT_MAX_S} seconds; got {timeout}"
                )
            params["timeout"] = str(timeout)
        http_timeout = (timeout or DEFAULT_WAIT_S) + _HTTP_SLACK_S
    elif timeout is not None:
        raise ClientError("a wait timeout only applies with wait=True")
    return Call(
        "POST",
        "/v1/jobs",
        params=params,
        json_body=submit_body(skill, inputs, max_cost_micros=max_cost_micros),
        timeout=http_timeout,
        headers=idempotency_headers(idempotency_key),
    )


def submit_body(
    skill: str, inputs: Mapping[str, Any], *, max_cost_micros: int | None = None
) -> dict[str, Any]:
    """J1's body; the cap is checked here so a typo fails before anything is sent."""
    body: dict[str, Any] = {"skill": skill, "inputs": dict(inputs)}
    if max_cost_micros is not None:
        if isinstance(max_cost_micros, bool) or max_cost_micros <= 0:
            raise ClientError(f"max_cost_micros must be a positive integer; got {max_cost_micros}")
        body["max_cost_micros"] = max_cost_micros
    return body


IDEMPOTENCY_KEY_MAX: Final = 255


def idempotency_headers(key: str | None) -> dict[str, str] | None:
    """The ``Idempotency-Key`` header (J10), or ``None`` without a key."""
    if key is None:
        return None
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise ClientError(
            f"an idempotency key must be 1 to {IDEMPOTENCY_KEY_MAX} characters; got {len(key)}"
        )
    return {"Idempotency-Key": key}


def get_job(job_id: str) -> Call:
    return Call("GET", f"/v1/jobs/{seg(job_id)}")


def list_jobs(
    *, status: str | None = None, limit: int | None = None, cursor: str | None = None
) -> Call:
    """A page, newest first; ``cursor`` is the ``next_cursor`` of the page before."""
    return Call(
        "GET",
        "/v1/jobs",
        params={"status": status or None, "limit": limit, "cursor": cursor or None},
    )


def job_events(job_id: str) -> Call:
    return Call("GET", f"/v1/jobs/{seg(job_id)}/events")


def job_stream_path(job_id: str) -> str:
    """The job's SSE endpoint (J5), for the clients' ``stream``."""
    return f"/v1/jobs/{seg(job_id)}/stream"


def cancel_job(job_id: str) -> Call:
    return Call("POST", f"/v1/jobs/{seg(job_id)}/cancel")


def job_usage(job_id: str) -> Call:
    return Call("GET", f"/v1/jobs/{seg(job_id)}/usage")


# -- feedback (J9) ----------------------------------------------------------------------


def submit_feedback(
    job_id: str, *, rating: int = 0, comment: str = "", end_user_id: str = ""
) -> Call:
    """Upsert the feedback of ``end_user_id`` ("" anonymous) on a job; the gateway checks
    the rating (-1, 0, 1) and that a thumb or a comment is given."""
    return Call(
        "POST",
        f"/v1/jobs/{seg(job_id)}/feedback",
        json_body={"rating": rating, "comment": comment, "end_user_id": end_user_id},
    )


def list_feedback(job_id: str) -> Call:
    return Call("GET", f"/v1/jobs/{seg(job_id)}/feedback")


def feedback_stats(job_id: str) -> Call:
    return Call("GET", f"/v1/jobs/{seg(job_id)}/feedback/stats")


# -- secrets (X1) -----------------------------------------------------------------------


def check_secret_name(name: str) -> str:
    """The name, or a :class:`ClientError` saying what a name may be (checked before a
    value is asked for or sent)."""
    if not SECRET_NAME_RE.match(name):
        raise ClientError(
            f"{name!r} is not a secret name: use capital letters, digits and _, not "
            "starting with a digit (e.g. OPENAI_API_KEY); it becomes an environment variable"
        )
    return name


def list_secrets() -> Call:
    return Call("GET", "/v1/secrets")


def set_secret(name: str, value: str) -> Call:
    """Create or overwrite; the value travels in the body only, never in the URL."""
    return Call("PUT", f"/v1/secrets/{seg(check_secret_name(name))}", json_body={"value": value})


def delete_secret(name: str) -> Call:
    return Call("DELETE", f"/v1/secrets/{seg(check_secret_name(name))}")


# -- usage (Z2), keys (T2), drive (D4) ----------------------------------------------------


def usage(*, start: str | None = None, end: str | None = None, group_by: str | None = None) -> Call:
    """``GET /v1/usage``: billed calls summed per key; the gateway checks the range."""
    return Call("GET", "/v1/usage", params={"from": start, "to": end, "group_by": group_by})


def create_key() -> Call:
    return Call("POST", "/v1/keys")


def list_keys() -> Call:
    return Call("GET", "/v1/keys")


def revoke_key(prefix: str) -> Call:
    return Call("DELETE", f"/v1/keys/{seg(prefix)}")


def balance() -> Call:
    return Call("GET", "/v1/billing/balance")


def drive_upload(
    content: bytes, filename: str, *, path: str = "", content_type: str | None = None
) -> Call:
    """``POST /v1/drive/upload`` (D2): ``path`` empty → ``uploads/<uuid>.<ext>``, ending in
    ``/`` → that folder with ``filename``, else that exact path."""
    ctype = content_type or "application/octet-stream"
    return Call(
        "POST",
        "/v1/drive/upload",
        files={"file": (filename, content, ctype)},
        data={"path": path} if path else None,
        timeout=120.0,
    )


def drive_sign(path: str, ttl: int) -> Call:
    return Call("GET", "/v1/drive/sign", params={"path": path, "ttl": str(ttl)})


# -- admin (the admin token, T3) --------------------------------------------------------


def create_project(name: str) -> Call:
    return Call("POST", "/v1/admin/projects", json_body={"name": name})


def create_project_key(project_id: str) -> Call:
    return Call("POST", f"/v1/admin/projects/{seg(project_id)}/keys")


def list_projects() -> Call:
    return Call("GET", "/v1/admin/projects")


def list_project_keys(project_id: str) -> Call:
    return Call("GET", f"/v1/admin/projects/{seg(project_id)}/keys")


def revoke_project_key(project_id: str, prefix: str) -> Call:
    return Call("DELETE", f"/v1/admin/projects/{seg(project_id)}/keys/{seg(prefix)}")


def grant_credits(project_id: str, *, micros: int) -> Call:
    """B4. Sent as micros, computed exactly, so no float ever stands for money."""
    if micros <= 0:
        raise ClientError(f"the amount must be positive, got {micros} micros")
    return Call(
        "POST", f"/v1/admin/projects/{seg(project_id)}/credits", json_body={"micros": micros}
    )
