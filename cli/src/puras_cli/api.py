"""The gateway operations the CLI and the dev stack perform, one function each.

Commands parse arguments and print; the dev stack bootstraps projects and runs the demo;
both go through these functions so there is one place that knows each path and body.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import quote

from puras_bundle import PackError, pack_project
from puras_cli.client import PurasClient, PurasError, SseEvent

__all__ = [
    "MICROS_PER_USD",
    "USAGE_GROUP_BY",
    "WAIT_MAX_S",
    "activate_deployment",
    "cancel_job",
    "create_key",
    "create_project",
    "create_project_key",
    "delete_deployment",
    "get_job",
    "grant_credits",
    "job_events",
    "list_deployments",
    "list_jobs",
    "list_keys",
    "pack",
    "push_bundle",
    "revoke_key",
    "stream_job",
    "submit_job",
    "usage",
    "usd_to_micros",
]

MICROS_PER_USD = 1_000_000
WAIT_MAX_S = 60
"""The gateway's ceiling for ``?wait=true&timeout=N`` (J4)."""
_HTTP_SLACK_S = 15.0
"""How much longer than the server-side wait the HTTP call may take (queueing, network)."""


def _seg(value: str) -> str:
    # Ids come from the command line: never let one add a path segment or a query.
    return quote(value, safe="")


def usd_to_micros(usd: str | Decimal | int) -> int:
    """Exact dollars to micros; refuses fractions of a micro and non-positive amounts."""
    try:
        amount = Decimal(str(usd))
    except InvalidOperation as exc:
        raise PurasError(f"{usd!r} is not an amount of dollars") from exc
    if not amount.is_finite() or amount <= 0:
        raise PurasError(f"the amount must be positive, got {usd}")
    micros = amount * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise PurasError(f"{usd} USD is not a whole number of micros (at most 6 decimals)")
    return int(micros)


# -- deployments ------------------------------------------------------------------------


def pack(project_dir: Path) -> bytes:
    """The bundle zip of a project directory (P4 excludes), or a :class:`PurasError`."""
    try:
        return pack_project(project_dir).data
    except PackError as exc:
        problems = exc.problems
        detail = problems[0] if len(problems) == 1 else "\n  " + "\n  ".join(problems)
        raise PurasError(f"cannot push {project_dir}: {detail}") from exc


def push_bundle(
    client: PurasClient, bundle: bytes, *, notes: str = "", activate: bool = True
) -> Any:
    """``POST /v1/deployments`` (P1) with the zip as the ``bundle`` file."""
    return client.post(
        "/v1/deployments",
        files={"bundle": ("bundle.zip", bundle, "application/zip")},
        data={"notes": notes, "activate": "true" if activate else "false"},
        # Validation and storage of a large bundle take longer than a plain call.
        timeout=120.0,
    )


def list_deployments(client: PurasClient) -> Any:
    return client.get("/v1/deployments")


def activate_deployment(client: PurasClient, deployment_id: str) -> Any:
    return client.post(f"/v1/deployments/{_seg(deployment_id)}/activate")


def delete_deployment(client: PurasClient, deployment_id: str) -> Any:
    return client.delete(f"/v1/deployments/{_seg(deployment_id)}")


# -- jobs -------------------------------------------------------------------------------


def submit_job(
    client: PurasClient,
    skill: str,
    inputs: Mapping[str, Any],
    *,
    wait: bool = False,
    timeout: int | None = None,
) -> Any:
    """``POST /v1/jobs``: queued at once, or with ``wait`` the JobOut once terminal.

    With ``wait``, a job still running after ``timeout`` seconds comes back non-terminal
    (J1); follow it with :func:`stream_job`.
    """
    params: dict[str, str] = {}
    http_timeout: float | None = None
    if wait:
        params["wait"] = "true"
        if timeout is not None:
            if not 1 <= timeout <= WAIT_MAX_S:
                raise PurasError(f"--timeout must be between 1 and {WAIT_MAX_S} seconds")
            params["timeout"] = str(timeout)
        http_timeout = (timeout or 30) + _HTTP_SLACK_S
    return client.request(
        "POST",
        "/v1/jobs",
        json_body={"skill": skill, "inputs": dict(inputs)},
        params=params,
        timeout=http_timeout,
    )


def get_job(client: PurasClient, job_id: str) -> Any:
    return client.get(f"/v1/jobs/{_seg(job_id)}")


def list_jobs(client: PurasClient, *, status: str | None = None, limit: int | None = None) -> Any:
    return client.get("/v1/jobs", params={"status": status, "limit": limit})


def job_events(client: PurasClient, job_id: str) -> Any:
    return client.get(f"/v1/jobs/{_seg(job_id)}/events")


def stream_job(client: PurasClient, job_id: str) -> Iterator[SseEvent]:
    """The job's events as they happen, ending with the ``end`` frame (the final JobOut)."""
    return client.stream(f"/v1/jobs/{_seg(job_id)}/stream")


def cancel_job(client: PurasClient, job_id: str) -> Any:
    return client.post(f"/v1/jobs/{_seg(job_id)}/cancel")


# -- usage ------------------------------------------------------------------------------

USAGE_GROUP_BY = ("day", "skill", "model")


def usage(
    client: PurasClient,
    *,
    start: str | None = None,
    end: str | None = None,
    group_by: str | None = None,
) -> Any:
    """``GET /v1/usage``: billed calls summed per key; the gateway checks the range."""
    return client.get("/v1/usage", params={"from": start, "to": end, "group_by": group_by})


# -- keys -------------------------------------------------------------------------------


def create_key(client: PurasClient) -> Any:
    return client.post("/v1/keys")


def list_keys(client: PurasClient) -> Any:
    return client.get("/v1/keys")


def revoke_key(client: PurasClient, prefix: str) -> Any:
    return client.delete(f"/v1/keys/{_seg(prefix)}")


# -- admin (the admin token, T3) ------------------------------------------------------


def create_project(admin: PurasClient, name: str) -> str:
    out = admin.post("/v1/admin/projects", {"name": name})
    if not isinstance(out, Mapping) or not isinstance(out.get("id"), str):
        raise PurasError(f"POST /v1/admin/projects answered without a project id: {out!r}")
    return str(out["id"])


def create_project_key(admin: PurasClient, project_id: str) -> Mapping[str, Any]:
    out = admin.post(f"/v1/admin/projects/{_seg(project_id)}/keys")
    if not isinstance(out, Mapping) or not isinstance(out.get("key"), str):
        raise PurasError(f"POST /v1/admin/projects/{project_id}/keys answered without a key")
    return out


def grant_credits(admin: PurasClient, project_id: str, *, micros: int) -> Any:
    """B4. Sent as micros, computed exactly, so no float ever stands for money."""
    if micros <= 0:
        raise PurasError(f"the amount must be positive, got {micros} micros")
    return admin.post(f"/v1/admin/projects/{_seg(project_id)}/credits", {"micros": micros})
