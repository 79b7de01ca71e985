"""Billing's usage loop: long-lived pulls of the job subjects (``ev.*.job.*``) of
``PURAS_EVENTS``, charging each ``job.usage`` event.

The consumer sees every job event; all but usage are acked from the envelope's type,
without decoding their payload. A usage event is acked once its charge and its job's
cost are stored; one that fails for a passing reason (NATS away) is not acked and comes
back after the ack wait (charging is safe to repeat).

A usage event billing cannot price (a slug this build's registry does not know, a bad
token count) is refused loudly and retried, never skipped and never priced at zero: an
error log per attempt names the event, its slug, project and job; the event is nak'ed
with a delay doubling up to ``usage_retry_max_s``; and the service reports itself
degraded while it holds any. The consumer never gives up on a delivery, so the usage is
charged as soon as a billing with the slug in its registry runs (the usual cause is a
runner deployed with a newer registry than billing's). A nak frees the message's pull
credit, so other projects' usage goes on being charged meanwhile. Only an event that
cannot be decoded at all (no delivery can read it) is terminated, with an error log.
"""

from __future__ import annotations

import asyncio

import structlog
from nats.aio.msg import Msg
from opentelemetry.trace import Tracer

from puras_billing.app.usage import UsageBiller
from puras_common.bus import PullConsumer
from puras_common.bus.serve import serve_pull
from puras_common.events.base import DecodeError, Envelope, decode_envelope, decode_event
from puras_common.events.types import MediaUsageRecorded, UsageRecorded
from puras_common.logging import get_logger
from puras_common.pricing import PricingError
from puras_common.telemetry import extract_context, tracer

__all__ = ["RefusedUsage", "handle_job_event", "retry_delay_s", "run_usage"]

log = get_logger(__name__)

_USAGE = frozenset({UsageRecorded.type, MediaUsageRecorded.type})
"""The billable job events: a model call's tokens, a media generation's inputs."""


class RefusedUsage:
    """Usage events this replica holds unpriced, by event id (for health: degraded)."""

    def __init__(self) -> None:
        self.held: dict[str, str] = {}

    def degraded(self) -> dict[str, str]:
        if not self.held:
            return {}
        slugs = ", ".join(sorted(set(self.held.values())))
        return {"usage": f"{len(self.held)} usage event(s) cannot be priced (slugs: {slugs})"}


def retry_delay_s(num_delivered: int, max_s: float) -> float:
    """1 s, 2 s, 4 s ... up to ``max_s``: the delay before an unpriced usage is retried."""
    return float(min(max_s, 2.0 ** min(num_delivered - 1, 30)))


async def handle_job_event(
    biller: UsageBiller,
    msg: Msg,
    spans: Tracer,
    *,
    refused: RefusedUsage,
    retry_max_s: float,
) -> None:
    try:
        env = decode_envelope(msg.data)
    except DecodeError as exc:
        log.error("undecodable job event dropped", error=str(exc), subject=msg.subject)
        await msg.term()
        return
    if env.type not in _USAGE:
        await msg.ack()  # not billable: no payload decoded
        return
    bound = structlog.contextvars.bound_contextvars(
        project_id=env.project_id, job_id=env.aggregate_id, usage_id=env.id
    )
    with bound:
        try:
            ev = decode_event(env)
        except DecodeError as exc:
            log.error("undecodable usage event dropped: NOT BILLED", error=str(exc))
            await msg.term()
            return
        if not isinstance(ev, UsageRecorded | MediaUsageRecorded):
            # Written by a newer build (a higher schema version): a billing that knows
            # it will charge it; until then it is held like an unknown slug.
            await _refuse(msg, refused, env, "?", f"usage schema v{env.v}", retry_max_s)
            return
        with spans.start_as_current_span("billing.usage", context=extract_context(msg.headers)):
            try:
                await biller.bill(
                    ev,
                    usage_id=env.id,
                    usage_seq=msg.metadata.sequence.stream,
                    project_id=env.project_id,
                    job_id=env.aggregate_id,
                )
            except PricingError as exc:
                await _refuse(msg, refused, env, ev.model, str(exc), retry_max_s)
                return
    refused.held.pop(env.id, None)
    await msg.ack()


async def _refuse(
    msg: Msg, refused: RefusedUsage, env: Envelope, slug: str, reason: str, retry_max_s: float
) -> None:
    delivered = msg.metadata.num_delivered
    delay = retry_delay_s(delivered, retry_max_s)
    refused.held[env.id] = slug
    log.error(
        "usage event cannot be priced: NOT BILLED, will retry",
        usage_id=env.id,
        project_id=env.project_id,
        job_id=env.aggregate_id,
        slug=slug,
        error=reason,
        delivery=delivered,
        retry_in_s=delay,
    )
    await msg.nak(delay=delay)


async def run_usage(
    consumer: PullConsumer,
    biller: UsageBiller,
    stop: asyncio.Event,
    *,
    refused: RefusedUsage,
    retry_max_s: float,
) -> None:
    spans = tracer("puras.billing")
    await serve_pull(
        consumer,
        lambda msg: handle_job_event(biller, msg, spans, refused=refused, retry_max_s=retry_max_s),
        stop,
    )
