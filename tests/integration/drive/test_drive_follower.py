"""The drive's follower on a real nats-server: every project in the log gets its drive,
those created before the drive started and those created after."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from puras_common.bus import Bus
from puras_common.events.subjects import AGG_PROJECT
from puras_common.events.types import ProjectCreated
from puras_common.ids import new_id
from puras_drive.adapters.local_fs import LocalDrive
from puras_drive.app.provisioning import Provisioner
from puras_drive.entrypoints.projects import follow_projects

pytestmark = pytest.mark.integration

WAIT_S = 10.0


async def _create(bus: Bus, name: str) -> str:
    pid = new_id()
    await bus.append(
        ProjectCreated(name=name),
        project_id=pid,
        aggregate=AGG_PROJECT,
        aggregate_id=pid,
        event_id=f"{pid}:created",
    )
    return pid


async def test_every_project_of_the_log_gets_its_drive(bus: Bus, tmp_path: Path) -> None:
    before = await _create(bus, "before")
    ready, stop = asyncio.Event(), asyncio.Event()
    created: asyncio.Queue[str] = asyncio.Queue()

    class Watched(Provisioner):
        """Says which project it handled (the test waits on that, not on time)."""

        async def project_created(self, project_id: str) -> None:
            await super().project_created(project_id)
            created.put_nowait(project_id)

    task = asyncio.create_task(follow_projects(bus.js, Watched(LocalDrive(tmp_path)), ready, stop))
    try:
        await asyncio.wait_for(ready.wait(), WAIT_S)
        # Ready means what the log held at start is handled.
        assert (tmp_path / before).is_dir()
        after = await _create(bus, "after")
        while await asyncio.wait_for(created.get(), WAIT_S) != after:
            pass
        assert (tmp_path / after).is_dir()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, WAIT_S)
