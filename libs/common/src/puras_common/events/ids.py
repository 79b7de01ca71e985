"""Event ids, message ids and durable consumer names: declared once, used everywhere.

An event id is deterministic: it names the fact, not the attempt to publish it, and is
also the ``Nats-Msg-Id`` so JetStream drops a retried publish of the same fact. Two
writers that may record the same fact (a runner and the scheduler's lost-work watcher
both failing a job) use the same id, so only one of them lands.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BILLING_DURABLE",
    "BILLING_USAGE_DURABLE",
    "SCHEDULER_DURABLE",
    "balance_crossed_id",
    "cancel_msg_id",
    "credit_charged_id",
    "credit_granted_id",
    "deployment_activated_id",
    "deployment_build_outcome_id",
    "deployment_created_id",
    "deployment_deleted_id",
    "drive_delete_id",
    "drive_write_id",
    "feedback_given_id",
    "held_msg_id",
    "job_agent_started_id",
    "job_charged_id",
    "job_log_id",
    "job_media_usage_id",
    "job_model_response_id",
    "job_queued_id",
    "job_released_id",
    "job_started_id",
    "job_terminal_id",
    "job_tool_call_id",
    "job_tool_result_id",
    "job_usage_id",
    "key_created_id",
    "key_revoked_id",
    "key_spend_limit_id",
    "project_created_id",
    "project_policy_id",
    "runners_durable",
    "secret_deleted_id",
    "secret_set_id",
    "work_again_msg_id",
    "work_msg_id",
]

# -- durable consumers -------------------------------------------------------------------

SCHEDULER_DURABLE: Final = "scheduler"
"""The scheduler's consumer of ``cmd.scheduler.>`` on ``PURAS_CMDS`` (shared by replicas)."""
BILLING_DURABLE: Final = "billing"
"""Billing's consumer of ``cmd.billing.>`` on ``PURAS_CMDS`` (shared by replicas)."""
BILLING_USAGE_DURABLE: Final = "billing-usage"
"""Billing's consumer of the job subjects ``ev.*.job.*`` on ``PURAS_EVENTS``: the usage
events it charges (shared by replicas)."""


def runners_durable(pool: str) -> str:
    """``runners-<pool>``: the consumer of ``work.<pool>`` shared by every runner of a pool."""
    return f"runners-{pool}"


# -- project, keys, ledger ---------------------------------------------------------------


def project_created_id(project_id: str) -> str:
    """``<project>:created``."""
    return f"{project_id}:created"


def key_created_id(prefix: str) -> str:
    """``key:<prefix>:created``."""
    return f"key:{prefix}:created"


def key_revoked_id(prefix: str) -> str:
    """``key:<prefix>:revoked``: revoking twice records one fact."""
    return f"key:{prefix}:revoked"


def key_spend_limit_id(prefix: str, request_id: str) -> str:
    """``key:<prefix>:limit:<request id>``: one limit change, recorded once."""
    return f"key:{prefix}:limit:{request_id}"


def project_policy_id(project_id: str, request_id: str) -> str:
    """``<project>:policy:<request id>``: one policy change, recorded once."""
    return f"{project_id}:policy:{request_id}"


def balance_crossed_id(cause_id: str, direction: str) -> str:
    """``<depleted|restored>:<ledger event id>``: the crossing an entry caused, once."""
    return f"{direction}:{cause_id}"


def credit_charged_id(usage_id: str) -> str:
    """``charge:<usage event id>``: a usage event delivered twice is charged once."""
    return f"charge:{usage_id}"


def job_charged_id(usage_id: str) -> str:
    """``cost:<usage event id>``: the job's side of the same charge."""
    return f"cost:{usage_id}"


def credit_granted_id(grant_id: str) -> str:
    """``grant:<grant id>``: an admin call retried with its grant id grants once."""
    return f"grant:{grant_id}"


# -- deployments -------------------------------------------------------------------------


def deployment_created_id(deployment_id: str) -> str:
    """``<deployment>:created``."""
    return f"{deployment_id}:created"


def deployment_activated_id(deployment_id: str, after_seq: int) -> str:
    """``<deployment>:activated:<seq>``: activating it again later is a new fact, a retry
    of the same decision (made on the subject as it stood at ``after_seq``) is not."""
    return f"{deployment_id}:activated:{after_seq}"


def deployment_build_outcome_id(deployment_id: str) -> str:
    """``<deployment>:build``: a deployment's build has one outcome (built or failed); a
    redelivered build request records it once."""
    return f"{deployment_id}:build"


def deployment_deleted_id(deployment_id: str) -> str:
    """``<deployment>:deleted``."""
    return f"{deployment_id}:deleted"


# -- drive -------------------------------------------------------------------------------


def drive_write_id(write_id: str) -> str:
    """``drive:write:<write id>``: one write of a file (a new id per write, the same on
    a retried publish)."""
    return f"drive:write:{write_id}"


def drive_delete_id(delete_id: str) -> str:
    """``drive:delete:<delete id>``."""
    return f"drive:delete:{delete_id}"


# -- feedback --------------------------------------------------------------------------


def feedback_given_id(job_id: str, request_id: str) -> str:
    """``feedback:<job>:<request id>``: each rating is a new fact (a user may change
    theirs), recorded once however often its publish is retried."""
    return f"feedback:{job_id}:{request_id}"


# -- secrets -----------------------------------------------------------------------------


def secret_set_id(name: str, change_id: str) -> str:
    """``secret:<name>:set:<change id>``: every set (and every re-seal by a rotation) is
    a new fact, recorded once however often its publish is retried."""
    return f"secret:{name}:set:{change_id}"


def secret_deleted_id(name: str, change_id: str) -> str:
    """``secret:<name>:deleted:<change id>`` (a name can be set and deleted again)."""
    return f"secret:{name}:deleted:{change_id}"


# -- jobs --------------------------------------------------------------------------------


def job_queued_id(job_id: str) -> str:
    """``<job>:queued``: the scheduler admits a job id once."""
    return f"{job_id}:queued"


def job_released_id(job_id: str) -> str:
    """``<job>:released``: a held job leaves the held queue once."""
    return f"{job_id}:released"


def job_started_id(job_id: str, attempt: int) -> str:
    """``<job>:started:<attempt>``."""
    return f"{job_id}:started:{attempt}"


def job_log_id(job_id: str, attempt: int, n: int) -> str:
    """``<job>:log:<attempt>:<n>``: the n-th log batch of an attempt."""
    return f"{job_id}:log:{attempt}:{n}"


def job_terminal_id(job_id: str) -> str:
    """``<job>:terminal``: one id for every way a job ends, so only one end lands (J3)."""
    return f"{job_id}:terminal"


# -- messages that are not events ----------------------------------------------------------


def work_msg_id(job_id: str) -> str:
    """``<job>:work``: the job's work item on ``PURAS_WORK``."""
    return f"{job_id}:work"


def work_again_msg_id(job_id: str) -> str:
    """``<job>:work:again``: the work item a redelivered submit dispatches. Not the
    first one's id: that one may have been dropped by a runner that never saw its
    job.queued stored, and its id would deduplicate the new item away."""
    return f"{job_id}:work:again"


def held_msg_id(job_id: str) -> str:
    """``<job>:held``: the job's entry on ``PURAS_HELD`` while it waits for credit."""
    return f"{job_id}:held"


def cancel_msg_id(job_id: str) -> str:
    """``<job>:cancel``: the cancel command for a job (asking twice sends one)."""
    return f"{job_id}:cancel"


# -- agent runs: one id per step of the run, whichever attempt records it ---------------
# A resumed attempt that records a step again (it could not tell the first publish
# landed) is dropped by JetStream's duplicate window instead of recorded twice.


def job_agent_started_id(job_id: str) -> str:
    """``<job>:agent``."""
    return f"{job_id}:agent"


def job_model_response_id(job_id: str, step: int) -> str:
    """``<job>:model:<step>``."""
    return f"{job_id}:model:{step}"


def job_media_usage_id(job_id: str, call: int) -> str:
    """``<job>:media:<n>``: the job's n-th media generation, billed once."""
    return f"{job_id}:media:{call}"


def job_usage_id(job_id: str, step: int) -> str:
    """``<job>:usage:<step>``."""
    return f"{job_id}:usage:{step}"


def job_tool_call_id(job_id: str, step: int, call_id: str) -> str:
    """``<job>:tool_call:<step>:<call id>``."""
    return f"{job_id}:tool_call:{step}:{call_id}"


def job_tool_result_id(job_id: str, step: int, call_id: str) -> str:
    """``<job>:tool_result:<step>:<call id>``."""
    return f"{job_id}:tool_result:{step}:{call_id}"
