"""Jobs waiting for credit, kept durably in the ``PURAS_HELD`` work-queue stream.

A held job is its ``RunJob`` at ``held.<project>.<job>``. Releasing a project binds an
ephemeral consumer filtered to that project, hands each job to the caller (which moves
it to ``work.<pool>``) and acks it. On a work-queue stream two consumers may not
overlap, so a concurrent release of the same project by another scheduler replica is
refused by the server: that replica is already doing the work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError

from puras_common.bus import Bus
from puras_common.events.commands import RunJob
from puras_common.events.subjects import HELD_STREAM, held_subject
from puras_common.logging import get_logger

__all__ = ["HeldJobs"]

log = get_logger(__name__)

MoveFn = Callable[[bytes], Awaitable[None]]


class HeldJobs:
    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def hold(self, work: RunJob, payload: bytes) -> None:
        await self._bus.publish_raw(
            held_subject(work.project_id, work.job_id),
            payload,
            msg_id=f"{work.job_id}:held",
            stream=HELD_STREAM,
        )

    async def projects_with_held_jobs(self) -> set[str]:
        info = await self._bus.js.stream_info(HELD_STREAM, subjects_filter="held.>")
        subjects = info.state.subjects or {}
        return {s.split(".")[1] for s, n in subjects.items() if n}

    async def release_all(self, project_id: str, move: MoveFn, batch: int = 128) -> int:
        """Hand every held job of the project to ``move``, acking each after. Returns how many."""
        js = self._bus.js
        cfg = ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject=f"held.{project_id}.*",
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
            while True:
                try:
                    msgs = await sub.fetch(batch, timeout=0.5)
                except nats.errors.TimeoutError:
                    break
                for m in msgs:
                    await move(m.data)
                    await m.ack_sync()
                    moved += 1
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await js.delete_consumer(HELD_STREAM, info.name)
        return moved
