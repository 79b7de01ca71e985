"""The event union, the field docs, the terminal upcasters and the one id module."""

from __future__ import annotations

import ast
import inspect
import typing
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import msgspec
import pytest

from puras_common.events import (
    TERMINAL_EVENT_TYPES,
    TERMINAL_EVENTS,
    TERMINAL_STATUSES,
    AnyEvent,
    Envelope,
    JobQueued,
    JobRecord,
    JobStarted,
    base,
    commands,
    decode_envelope,
    decode_event,
    encode_event,
    ids,
    registered_types,
    types,
)
from puras_common.manifest.spec import SkillSpec, ToolSpec
from puras_common.views.jobs import apply_job_event, job_out

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)
T2 = datetime(2026, 1, 1, 0, 0, 9, tzinfo=UTC)


def _product_types() -> dict[str, type]:
    # Tests register throwaway types of their own; the log's types live in the packages.
    return {t: c for t, c in registered_types().items() if c.__module__.startswith("puras_")}


def test_every_registered_event_type_is_in_the_union() -> None:
    members = set(typing.get_args(AnyEvent))
    assert set(_product_types().values()) == members


def test_terminal_is_one_notion() -> None:
    assert {c.type for c in TERMINAL_EVENTS} == TERMINAL_EVENT_TYPES
    assert {t.removeprefix("job.") for t in TERMINAL_EVENT_TYPES} == TERMINAL_STATUSES
    assert set(TERMINAL_EVENTS) == set(typing.get_args(types.JobTerminal))


def _undocumented_fields(module: ModuleType) -> list[str]:
    tree = ast.parse(inspect.getsource(module))
    missing = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for i, stmt in enumerate(body):
            if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
                continue
            if "ClassVar" in ast.unparse(stmt.annotation):
                continue
            nxt = body[i + 1] if i + 1 < len(body) else None
            documented = (
                isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            )
            if not documented:
                missing.append(f"{module.__name__}.{node.name}.{stmt.target.id}")
    return missing


@pytest.mark.parametrize("module", [types, base, commands], ids=lambda m: m.__name__)
def test_every_field_of_events_records_and_commands_has_a_docstring(module: ModuleType) -> None:
    assert _undocumented_fields(module) == []


# -- the terminal events of version 1 (the whole final job) -----------------------------


def _env_v1(type_: str, job: dict[str, Any], event_id: str = "j:terminal") -> Envelope:
    raw = msgspec.json.encode(
        {
            "id": event_id,
            "type": type_,
            "v": 1,
            "at": T2.isoformat(),
            "project_id": "p",
            "aggregate_id": "j",
            "data": {"job": job},
        }
    )
    return decode_envelope(raw)


def _before_the_end(*, started: bool) -> JobRecord | None:
    queued = JobQueued(skill="echo", inputs={"a": 1}, deployment_id="d", created_at=T0)
    events: list[AnyEvent] = [queued]
    if started:
        events.append(JobStarted(attempt=1, deployment_id="d", runner_id="r", started_at=T1))
    job = None
    for i, ev in enumerate(events):
        raw = encode_event(ev, event_id=f"e{i}", project_id="p", aggregate_id="j", at=T0)
        env = decode_envelope(raw)
        job = apply_job_event(job, env, decode_event(env))
    return job


def _old_record(status: str, **over: Any) -> dict[str, Any]:
    rec = JobRecord(
        id="j",
        project_id="p",
        skill="echo",
        status=status,  # type: ignore[arg-type]
        inputs={"a": 1},
        deployment_id="d",
        attempts=1,
        created_at=T0,
        started_at=T1,
        finished_at=T2,
    )
    return msgspec.to_builtins(msgspec.structs.replace(rec, **over))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("type_", "record", "started"),
    [
        ("job.succeeded", _old_record("succeeded", result={"ok": True}), True),
        ("job.failed", _old_record("failed", error="boom"), True),
        ("job.cancelled", _old_record("cancelled"), True),
        (
            "job.cancelled",
            _old_record("cancelled", attempts=0, started_at=None),
            False,
        ),
        # Failed at admission: never ran.
        ("job.failed", _old_record("failed", error="no", attempts=0, started_at=None), False),
        # A retried attempt's end names its own start (the fold keeps the first).
        (
            "job.succeeded",
            _old_record("succeeded", result={}, attempts=2, started_at=T2),
            True,
        ),
    ],
)
def test_an_old_terminal_event_folds_to_the_job_it_carried(
    type_: str, record: dict[str, Any], started: bool
) -> None:
    env = _env_v1(type_, record)
    ev = decode_event(env)
    assert isinstance(ev, TERMINAL_EVENTS)
    job = apply_job_event(_before_the_end(started=started), env, ev)
    assert job is not None
    assert job_out(job) == record


def test_facts_after_the_end_do_not_reopen_the_job() -> None:
    env = _env_v1("job.cancelled", _old_record("cancelled"))
    job = apply_job_event(_before_the_end(started=True), env, decode_event(env))
    late = JobStarted(attempt=2, deployment_id="d", runner_id="r", started_at=T2)
    raw = encode_event(late, event_id="j:started:2", project_id="p", aggregate_id="j")
    env2 = decode_envelope(raw)
    assert apply_job_event(job, env2, decode_event(env2)) == job


# -- ids ---------------------------------------------------------------------------------


def test_ids_keep_their_wire_spelling() -> None:
    # Event ids are message ids in the log: changing one lets a retried fact in twice.
    assert ids.job_queued_id("j") == "j:queued"
    assert ids.job_released_id("j") == "j:released"
    assert ids.job_started_id("j", 2) == "j:started:2"
    assert ids.job_log_id("j", 2, 7) == "j:log:2:7"
    assert ids.job_terminal_id("j") == "j:terminal"
    assert ids.work_msg_id("j") == "j:work"
    assert ids.held_msg_id("j") == "j:held"
    assert ids.cancel_msg_id("j") == "j:cancel"
    assert ids.project_created_id("p") == "p:created"
    assert ids.key_created_id("k") == "key:k:created"
    assert ids.key_revoked_id("k") == "key:k:revoked"
    assert ids.credit_granted_id("g") == "grant:g"
    assert ids.deployment_created_id("d") == "d:created"
    assert ids.deployment_activated_id("d", 4) == "d:activated:4"
    assert ids.deployment_deleted_id("d") == "d:deleted"
    assert ids.SCHEDULER_DURABLE == "scheduler"
    assert ids.runners_durable("default") == "runners-default"


# -- skills on the wire ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "validated"),
    [(types.SkillRecord, SkillSpec), (types.ToolRecord, ToolSpec)],
    ids=["skill", "tool"],
)
def test_the_logs_skill_type_has_the_manifests_json_shape(wire: type, validated: type) -> None:
    # deployment.created was written with the manifest's types: same names, same
    # defaults, so old and new logs read alike without an upcaster.
    def shape(cls: type) -> list[tuple[str, object]]:
        return [(f.name, f.default) for f in msgspec.structs.fields(cls)]

    assert shape(wire) == shape(validated)


def test_a_validated_skill_is_logged_as_the_same_json() -> None:
    spec = SkillSpec(
        name="caption",
        kind="agentic",
        entrypoint="SKILL.md",
        input_schema={"type": "object"},
        tools=[ToolSpec(name="resize", entrypoint="tools/r.py:run")],
        timeout_seconds=5,
    )
    record = msgspec.convert(msgspec.to_builtins(spec), types.SkillRecord)
    assert msgspec.json.encode(record) == msgspec.json.encode(spec)
