"""Stored messages into the audit's fold (pure): decode only what the audit reads.

Most of the log is job progress the audit only needs the type of (a job's row starts at
its ``job.queued``), so a job message is read for its ``type`` alone unless it is a
``job.usage``, a ``job.media_usage`` or a ``job.cost``; ledger messages are decoded
whole. This is what keeps the replay fast: the payload of a ``job.log`` or a
``job.model_response`` is skipped, not parsed."""

from __future__ import annotations

import msgspec

from puras_common.audit.fold import AuditFold
from puras_common.events.base import DecodeError, decode_envelope, decode_event
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER
from puras_common.events.types import JobCharged, MediaUsageRecorded, UsageRecorded

__all__ = ["feed"]


class _Head(msgspec.Struct):
    """What the audit reads of a job message: its id, type and version, the payload
    left raw (a ``job.log``'s lines are never parsed)."""

    id: str
    type: str
    v: int
    data: msgspec.Raw = msgspec.Raw(b"{}")


_head = msgspec.json.Decoder(_Head)
_usage = msgspec.json.Decoder(UsageRecorded)
_media = msgspec.json.Decoder(MediaUsageRecorded)
_cost = msgspec.json.Decoder(JobCharged)


def feed(
    fold: AuditFold, seq: int, subject: str, data: bytes, parts: list[str] | None = None
) -> None:
    """Hand one stored message (``ev.<project>.<aggregate>.<id>``) to ``fold``; ``parts``
    is the subject split in four, if the caller has it already."""
    if parts is None:
        parts = subject.split(".", 3)
    if len(parts) != 4:
        fold.undecodable(seq, subject, "not an event subject ev.<project>.<aggregate>.<id>")
        return
    _, project_id, aggregate, aggregate_id = parts
    try:
        if aggregate == AGG_JOB:
            head = _head.decode(data)
            type_ = head.type
            if type_ == UsageRecorded.type and head.v == UsageRecorded.version:
                fold.usage(seq, head.id, project_id, aggregate_id, _usage.decode(head.data))
            elif type_ == MediaUsageRecorded.type and head.v == MediaUsageRecorded.version:
                fold.usage(seq, head.id, project_id, aggregate_id, _media.decode(head.data))
            elif type_ == JobCharged.type and head.v == JobCharged.version:
                fold.job_cost(seq, project_id, aggregate_id, _cost.decode(head.data).call)
            elif type_ in (UsageRecorded.type, MediaUsageRecorded.type, JobCharged.type):
                # Another version: the codec upcasts an older one, refuses a newer one.
                env = decode_envelope(data)
                ev = decode_event(env)
                if isinstance(ev, UsageRecorded | MediaUsageRecorded):
                    fold.usage(seq, env.id, project_id, aggregate_id, ev)
                elif isinstance(ev, JobCharged):
                    fold.job_cost(seq, project_id, aggregate_id, ev.call)
                else:
                    fold.undecodable(seq, subject, f"{type_} v{env.v} is not readable here")
            else:
                fold.job_event(seq, project_id, aggregate_id, type_)
        elif aggregate == AGG_LEDGER:
            env = decode_envelope(data)
            ev = decode_event(env)
            if ev is None:
                fold.undecodable(seq, subject, f"ledger event type {env.type} v{env.v} unknown")
            else:
                fold.ledger_event(seq, env, ev)
        else:
            fold.undecodable(seq, subject, f"aggregate {aggregate!r} is not audited")
    except (msgspec.DecodeError, msgspec.ValidationError, DecodeError) as exc:
        fold.undecodable(seq, subject, str(exc))
