"""The gateway operations the CLI and the dev stack perform, one function each.

Commands parse arguments and print; the dev stack bootstraps projects and runs the demo;
both go through these functions, which run the shared client's calls
(:mod:`puras_client.calls`, the one place that knows each path and body, for the MCP
server too).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from puras_bundle import PackError, pack_project
from puras_cli.client import PurasClient, PurasError, SseEvent
from puras_client import calls

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
    "delete_secret",
    "feedback_stats",
    "get_job",
    "grant_credits",
    "job_events",
    "list_deployments",
    "list_feedback",
    "list_jobs",
    "list_keys",
    "list_secrets",
    "pack",
    "push_bundle",
    "revoke_key",
    "set_secret",
    "stream_job",
    "submit_feedback",
    "submit_job",
    "usage",
    "usd_to_micros",
]

MICROS_PER_USD = 1_000_000
WAIT_MAX_S = calls.WAIT_MAX_S
"""The gateway's ceiling for ``?wait=true&timeout=N`` (J4)."""


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
    return client.call(calls.push_bundle(bundle, notes=notes, activate=activate))


def list_deployments(client: PurasClient) -> Any:
    return client.call(calls.list_deployments())


def activate_deployment(client: PurasClient, deployment_id: str) -> Any:
    return client.call(calls.activate_deployment(deployment_id))


def delete_deployment(client: PurasClient, deployment_id: str) -> Any:
    return client.call(calls.delete_deployment(deployment_id))


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
    return client.call(calls.submit_job(skill, inputs, wait=wait, timeout=timeout))


def get_job(client: PurasClient, job_id: str) -> Any:
    return client.call(calls.get_job(job_id))


def list_jobs(client: PurasClient, *, status: str | None = None, limit: int | None = None) -> Any:
    return client.call(calls.list_jobs(status=status, limit=limit))


def job_events(client: PurasClient, job_id: str) -> Any:
    return client.call(calls.job_events(job_id))


def stream_job(client: PurasClient, job_id: str) -> Iterator[SseEvent]:
    """The job's events as they happen, ending with the ``end`` frame (the final JobOut)."""
    return client.stream(calls.job_stream_path(job_id))


def cancel_job(client: PurasClient, job_id: str) -> Any:
    return client.call(calls.cancel_job(job_id))


# -- feedback (J9) ----------------------------------------------------------------------


def submit_feedback(
    client: PurasClient, job_id: str, *, rating: int = 0, comment: str = "", end_user_id: str = ""
) -> Any:
    """Upsert one end user's feedback on a job; the row as it now stands."""
    return client.call(
        calls.submit_feedback(job_id, rating=rating, comment=comment, end_user_id=end_user_id)
    )


def list_feedback(client: PurasClient, job_id: str) -> Any:
    return client.call(calls.list_feedback(job_id))


def feedback_stats(client: PurasClient, job_id: str) -> Any:
    return client.call(calls.feedback_stats(job_id))


# -- secrets (X1) -----------------------------------------------------------------------


def list_secrets(client: PurasClient) -> Any:
    return client.call(calls.list_secrets())


def set_secret(client: PurasClient, name: str, value: str) -> Any:
    return client.call(calls.set_secret(name, value))


def delete_secret(client: PurasClient, name: str) -> Any:
    return client.call(calls.delete_secret(name))


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
    return client.call(calls.usage(start=start, end=end, group_by=group_by))


# -- keys -------------------------------------------------------------------------------


def create_key(client: PurasClient) -> Any:
    return client.call(calls.create_key())


def list_keys(client: PurasClient) -> Any:
    return client.call(calls.list_keys())


def revoke_key(client: PurasClient, prefix: str) -> Any:
    return client.call(calls.revoke_key(prefix))


# -- admin (the admin token, T3) ------------------------------------------------------


def create_project(admin: PurasClient, name: str) -> str:
    out = admin.call(calls.create_project(name))
    if not isinstance(out, Mapping) or not isinstance(out.get("id"), str):
        raise PurasError(f"POST /v1/admin/projects answered without a project id: {out!r}")
    return str(out["id"])


def create_project_key(admin: PurasClient, project_id: str) -> Mapping[str, Any]:
    out = admin.call(calls.create_project_key(project_id))
    if not isinstance(out, Mapping) or not isinstance(out.get("key"), str):
        raise PurasError(f"POST /v1/admin/projects/{project_id}/keys answered without a key")
    return out


def list_projects(admin: PurasClient) -> Any:
    return admin.call(calls.list_projects())


def list_project_keys(admin: PurasClient, project_id: str) -> Any:
    return admin.call(calls.list_project_keys(project_id))


def revoke_project_key(admin: PurasClient, project_id: str, prefix: str) -> Any:
    return admin.call(calls.revoke_project_key(project_id, prefix))


def grant_credits(admin: PurasClient, project_id: str, *, micros: int) -> Any:
    """B4. Sent as micros, computed exactly, so no float ever stands for money."""
    return admin.call(calls.grant_credits(project_id, micros=micros))
