"""The drive's follower of the log: every ``project.created``, from the first, to the app.

The only place in the drive that reads NATS. ``ready`` is set once it has handed over
what the log held when it started.
"""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext

from puras_common.bus import EventFollower
from puras_common.events.subjects import AGG_PROJECT, aggregate_filter
from puras_common.events.types import ProjectCreated
from puras_common.logging import get_logger
from puras_common.projection import decode_batch
from puras_drive.app.provisioning import Provisioner

__all__ = ["follow_projects"]

log = get_logger(__name__)

_BATCH = 500
_STOP_CHECK_S = 0.5
"""How long one wait for events lasts before ``stop`` is looked at again."""


async def follow_projects(
    js: JetStreamContext, provisioner: Provisioner, ready: asyncio.Event, stop: asyncio.Event
) -> None:
    follower = EventFollower(js, [aggregate_filter(AGG_PROJECT)], start_seq=1)
    await follower.start()
    try:
        if follower.initial_pending == 0:
            ready.set()
        while not stop.is_set():
            raw = await follower.next_batch(_BATCH, timeout=_STOP_CHECK_S)
            for rec in decode_batch(raw):
                if not isinstance(rec.event, ProjectCreated):
                    continue
                try:
                    await provisioner.project_created(rec.envelope.project_id)
                except ValueError as exc:
                    # An id no drive can be named after stays without one: said loudly,
                    # and the other projects still get theirs.
                    log.error("no drive for this project id", seq=rec.seq, error=str(exc))
            if raw and raw[-1].pending == 0:
                ready.set()
    finally:
        await follower.stop()
