"""The command loop: long-lived pulls from ``PURAS_CMDS``, commands handled concurrently.

Commands of different jobs are independent; what is ready is handled concurrently and
each command is acked once its own effects are stored (a command that fails is not
acked: JetStream redelivers it, and the handlers are safe to repeat). This is the only
place that sees NATS messages: the handlers get decoded commands.
"""

from __future__ import annotations

import asyncio

import msgspec
import structlog
from nats.aio.msg import Msg
from opentelemetry.trace import Tracer

from puras_common.bus import PullConsumer
from puras_common.bus.serve import serve_pull
from puras_common.events.commands import CancelJob, Command, SubmitJob, decode_command
from puras_common.logging import get_logger
from puras_common.telemetry import message_span, tracer
from puras_scheduler.app.handlers import NotAdmittedYet, Scheduler

__all__ = ["handle_command", "run_commands"]

log = get_logger(__name__)

NAK_BASE_S = 0.25
"""First delay before a cancel that came ahead of its job's admission is seen again."""
NAK_MAX_S = 5.0
"""Longest such delay (with 20 deliveries: about a minute and a half in all)."""


async def handle_command(scheduler: Scheduler, msg: Msg, spans: Tracer) -> None:
    """Handle one command message; ack it only once its effects are stored."""
    try:
        cmd: Command = decode_command(msg.data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # A command we cannot read will never become readable: say so loudly and drop it
        # from the queue instead of redelivering it forever.
        log.error("undecodable command dropped", error=str(exc), subject=msg.subject)
        await msg.term()
        return
    if not isinstance(cmd, SubmitJob | CancelJob):
        # Another service's command on our subjects: a publisher's bug, never ours to do.
        log.error("command for another service dropped", cmd=type(cmd).__name__)
        await msg.term()
        return
    with (
        structlog.contextvars.bound_contextvars(project_id=cmd.project_id, job_id=cmd.job_id),
        message_span(spans, "scheduler.command", msg.headers),
    ):
        if isinstance(cmd, SubmitJob):
            await scheduler.submit(cmd, redelivered=(msg.metadata.num_delivered or 1) > 1)
        else:
            try:
                await scheduler.cancel(cmd)
            except NotAdmittedYet:
                # Its submit is queued behind it (or being admitted by another replica):
                # ask again soon, backing off, within the command's deliveries.
                delivered = msg.metadata.num_delivered or 1
                await msg.nak(delay=min(NAK_BASE_S * 2 ** (delivered - 1), NAK_MAX_S))
                return
    await msg.ack()


async def run_commands(consumer: PullConsumer, scheduler: Scheduler, stop: asyncio.Event) -> None:
    spans = tracer("puras.scheduler")
    await serve_pull(consumer, lambda msg: handle_command(scheduler, msg, spans), stop)
