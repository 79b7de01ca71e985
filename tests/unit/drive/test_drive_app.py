"""The drive's handlers, built by ``bootstrap.build`` on the in-memory store."""

from __future__ import annotations

from drive_fakes import FakeDriveStore

from puras_common.ids import new_id
from puras_drive.bootstrap import build
from puras_drive.settings import DriveSettings


async def test_a_created_project_gets_its_drive_once_whatever_the_replays() -> None:
    store = FakeDriveStore()
    app = build(DriveSettings(env="dev"), store=store)
    p = new_id()
    for _ in range(3):  # the log is replayed from the start at every start
        await app.provisioner.project_created(p)
    assert await store.is_provisioned(p)
    assert store.provisions == 1
