"""Jobs waiting for credit, kept durably in the ``PURAS_HELD`` work-queue stream.

A held job is its ``RunJob`` at ``held.<project>.<job>``. Releasing a project binds an
ephemeral consumer filtered to that project, hands each job to the caller (which moves
it to ``work.<pool>``) and acks it. On a work-queue stream two consumers may not
overlap, so a concurrent release of the same project by another scheduler replica is
refused by the server: that replica is already doing the work.
"""

from __future__ import annotations

import contextlib

import msgspec
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError

from puras_common.bus import Bus
from puras_common.events.commands import RunJob
from puras_common.events.ids import held_msg_id
from puras_common.events.subjects import (
    HELD_FILTER,
    HELD_STREAM,
    held_filter,
    held_project,
    held_subject,
)
from puras_common.logging import get_logger
from puras_scheduler.app.ports import MoveFn

__all__ = ["NatsHeldJobs"]

log = get_logger(__name__)

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(RunJob)
_FETCH_S = 10.0
"""Bound on one fetch of held jobs the server said are there (it answers at once)."""


class NatsHeldJobs:
    def __init__(self, bus: Bus, *, batch: int = 128) -> None:
        self._bus = bus
        self._batch = batch

    async def hold(self, work: RunJob) -> None:
        await self._bus.publish_raw(
            held_subject(work.project_id, work.job_id),
            _enc.encode(work),
            msg_id=held_msg_id(work.job_id),
            stream=HELD_STREAM,
        )

    async def projects(self) -> set[str]:
        info = await self._bus.js.stream_info(HELD_STREAM, subjects_filter=HELD_FILTER)
        subjects = info.state.subjects or {}
        return {held_project(s) for s, n in subjects.items() if n}

    async def release_all(self, project_id: str, move: MoveFn) -> int:
        js = self._bus.js
        cfg = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=held_filter(project_id),
            inactive_threshold=60.0,
            ack_wait=60.0,
        )
        try:
            info = await js.add_consumer(HELD_STREAM, config=cfg)
        except APIError as exc:
            log.info(
                "held jobs are being released elsewhere", project_id=project_id, error=str(exc)
            )
            return 0
        moved = 0
        sub = await js.pull_subscribe_bind(info.name, HELD_STREAM)
        try:
            # Until the server says nothing is left (each message tells how many follow
            # it), not until a fetch comes back empty: a slow delivery must not end a
            # release early and leave funded jobs held.
            left = int(info.num_pending or 0)
            while left > 0:
                try:
                    msgs = await sub.fetch(self._batch, timeout=_FETCH_S)
                except nats.errors.TimeoutError:
                    log.warning("held jobs not delivered; they stay held", project_id=project_id)
                    break
                for m in msgs:
                    await move(_dec.decode(m.data))
                    await m.ack_sync()
                    moved += 1
                    left = int(m.metadata.num_pending or 0)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await js.delete_consumer(HELD_STREAM, info.name)
        return moved
