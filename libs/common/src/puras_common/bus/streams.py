"""The JetStream streams, declared once and checked at every start.

A stream that exists with a configuration different from its declaration is a loud
failure (:class:`StreamConfigMismatch`), never a silent re-create: re-creating the event
log would delete history. An operator changes a stream on purpose with
``puras admin streams --apply`` after reading the diff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from puras_common.events.subjects import (
    BUILDS_STREAM,
    CMDS_STREAM,
    EVENTS_STREAM,
    HELD_STREAM,
    WORK_STREAM,
)

__all__ = ["StreamConfigMismatch", "StreamSpec", "declared_streams", "ensure_streams"]


class StreamConfigMismatch(RuntimeError):
    """A stream exists with a configuration other than the declared one."""


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    retention: RetentionPolicy
    description: str
    duplicate_window_s: float = 120.0
    deny_delete: bool = False
    deny_purge: bool = False
    allow_direct: bool = False
    max_msg_size: int = -1
    extra: dict[str, Any] = field(default_factory=dict)

    def config(self, replicas: int) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            description=self.description,
            subjects=list(self.subjects),
            retention=self.retention,
            storage=StorageType.FILE,
            num_replicas=replicas,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window_s,
            deny_delete=self.deny_delete,
            deny_purge=self.deny_purge,
            allow_direct=self.allow_direct,
            max_msg_size=self.max_msg_size,
            **self.extra,
        )


def declared_streams() -> list[StreamSpec]:
    """Every stream Puras uses (ARCHITECTURE section 2)."""
    return [
        StreamSpec(
            name=EVENTS_STREAM,
            subjects=("ev.>",),
            retention=RetentionPolicy.LIMITS,
            description="Puras event log: every fact; never deleted",
            duplicate_window_s=300.0,
            deny_delete=True,
            deny_purge=True,
            allow_direct=True,
        ),
        StreamSpec(
            name=CMDS_STREAM,
            subjects=("cmd.>",),
            retention=RetentionPolicy.WORK_QUEUE,
            description="Commands from the gateway to a service",
        ),
        StreamSpec(
            name=WORK_STREAM,
            subjects=("work.>",),
            retention=RetentionPolicy.WORK_QUEUE,
            description="Runnable jobs per runner pool",
        ),
        StreamSpec(
            name=HELD_STREAM,
            subjects=("held.>",),
            retention=RetentionPolicy.WORK_QUEUE,
            description="Jobs admitted while their project had no credit",
        ),
        StreamSpec(
            name=BUILDS_STREAM,
            subjects=("build.>",),
            retention=RetentionPolicy.WORK_QUEUE,
            description="Venv builds of pushed deployments, for any runner",
        ),
    ]


def _enum(v: Any) -> Any:
    return getattr(v, "value", v)


def diff_config(spec: StreamSpec, actual: StreamConfig, replicas: int) -> list[str]:
    """Human-readable differences between a declaration and a live stream config."""
    want = spec.config(replicas)
    out: list[str] = []
    checks: list[tuple[str, Any, Any]] = [
        ("subjects", sorted(want.subjects or []), sorted(actual.subjects or [])),
        ("retention", _enum(want.retention), _enum(actual.retention)),
        ("storage", _enum(want.storage), _enum(actual.storage)),
        ("num_replicas", want.num_replicas, actual.num_replicas),
        ("deny_delete", bool(want.deny_delete), bool(actual.deny_delete)),
        ("deny_purge", bool(want.deny_purge), bool(actual.deny_purge)),
        ("allow_direct", bool(want.allow_direct), bool(actual.allow_direct)),
        (
            "duplicate_window",
            float(want.duplicate_window or 0),
            float(actual.duplicate_window or 0),
        ),
    ]
    for name, w, a in checks:
        if w != a:
            out.append(f"{name}: declared {w!r}, found {a!r}")
    return out


async def ensure_streams(
    js: JetStreamContext, *, replicas: int = 1, apply_changes: bool = False
) -> list[str]:
    """Create missing streams; fail on any that differ from their declaration.

    With ``apply_changes`` the differences are applied with a stream update instead (an
    operator's deliberate act); the returned list says what changed.
    """
    changed: list[str] = []
    for spec in declared_streams():
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            try:
                await js.add_stream(spec.config(replicas))
                changed.append(f"created {spec.name}")
                continue
            except BadRequestError:
                # Another service created it between our look-up and our create.
                info = await js.stream_info(spec.name)
        diffs = diff_config(spec, info.config, replicas)
        if not diffs:
            continue
        if apply_changes:
            await js.update_stream(spec.config(replicas))
            changed.extend(f"{spec.name}: {d}" for d in diffs)
            continue
        raise StreamConfigMismatch(
            f"stream {spec.name} does not match its declaration: "
            + "; ".join(diffs)
            + ". Review and run `puras admin streams --apply` to change it on purpose."
        )
    return changed
