"""The drive's handlers, built by ``bootstrap.build`` on the in-memory store."""

from __future__ import annotations

from pathlib import Path

from drive_fakes import FakeDriveStore

from puras_common.ids import new_id
from puras_drive.adapters.local_fs_storage import LocalStorage
from puras_drive.bootstrap import build
from puras_drive.settings import DriveSettings


async def test_a_created_project_gets_its_drive_once_whatever_the_replays(tmp_path: Path) -> None:
    store = FakeDriveStore()
    app = build(DriveSettings(env="dev"), store=store, storage=LocalStorage(tmp_path))
    p = new_id()
    for _ in range(3):  # the log is replayed from the start at every start
        await app.provisioner.project_created(p)
    assert await store.is_provisioned(p)
    assert store.provisions == 1
