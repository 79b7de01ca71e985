"""Billing's command loop: long-lived pulls from ``cmd.billing.>`` on ``PURAS_CMDS``.

The only place in billing that sees NATS messages: it decodes, hands the command to the
ledger writer and acks once the ledger event is stored. A command that fails is not
acked and comes back (the writer is safe to repeat); one that can never succeed is
dropped loudly.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog
from nats.aio.msg import Msg
from opentelemetry.trace import Tracer

from puras_billing.app.ledger import InvalidCommand, LedgerWriter
from puras_common.bus import PullConsumer
from puras_common.bus.serve import serve_pull
from puras_common.events.commands import GrantCredit, decode_command
from puras_common.logging import get_logger
from puras_common.telemetry import extract_context, tracer

__all__ = ["handle_command", "run_commands"]

log = get_logger(__name__)


async def handle_command(writer: LedgerWriter, msg: Msg, spans: Tracer) -> None:
    try:
        cmd = decode_command(msg.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        log.error("undecodable command dropped", error=str(exc), subject=msg.subject)
        await msg.term()
        return
    if not isinstance(cmd, GrantCredit):
        # Another service's command on our subjects: a publisher's bug, never ours to do.
        log.error("command for another service dropped", cmd=type(cmd).__name__)
        await msg.term()
        return
    with (
        structlog.contextvars.bound_contextvars(project_id=cmd.project_id),
        spans.start_as_current_span("billing.command", context=extract_context(msg.headers)),
    ):
        try:
            await writer.grant(cmd, redelivered=msg.metadata.num_delivered > 1)
        except InvalidCommand as exc:
            log.error("invalid command dropped", error=str(exc))
            await msg.term()
            return
    await msg.ack()


async def run_commands(consumer: PullConsumer, writer: LedgerWriter, stop: asyncio.Event) -> None:
    spans = tracer("puras.billing")
    await serve_pull(consumer, lambda msg: handle_command(writer, msg, spans), stop)
