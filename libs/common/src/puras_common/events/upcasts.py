"""Upcasters: old shapes of events, brought to the current one at decode time.

Nothing outside :func:`puras_common.events.base.decode_event` ever sees an old shape.
Each function takes the ``data`` of one event written at version N and returns it as
version N+1 would have written it; a chain of them brings any old event up to date.
"""

from __future__ import annotations

from typing import Any

from puras_common.events.base import upcaster

__all__: list[str] = []


# Terminal events of version 1 carried the whole final job (the API's JobOut), written by
# each of their four writers. From version 2 they carry the facts, and the job view is
# folded from the job's events (puras_common.views.jobs). What the old record held that
# the job's earlier events do not say is kept as the new facts: the outcome, the attempt
# count and that attempt's start, and the end; its id, skill, inputs, deployment and
# creation time are exactly those of the job's `job.queued`.


@upcaster("job.succeeded", 1)
def _succeeded_v1(data: dict[str, Any]) -> dict[str, Any]:
    job = data["job"]
    return {
        "result": job.get("result") or {},
        "attempt": job.get("attempts", 0),
        "started_at": job.get("started_at"),
        "finished_at": job["finished_at"],
    }


@upcaster("job.failed", 1)
def _failed_v1(data: dict[str, Any]) -> dict[str, Any]:
    job = data["job"]
    return {
        "error": job.get("error") or "",
        "attempt": job.get("attempts", 0),
        "started_at": job.get("started_at"),
        "finished_at": job["finished_at"],
    }


@upcaster("job.cancelled", 1)
def _cancelled_v1(data: dict[str, Any]) -> dict[str, Any]:
    return {"finished_at": data["job"]["finished_at"]}
