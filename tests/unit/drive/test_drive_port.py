"""The drive's store port: one suite, run against the in-memory fake the unit tests use
(``tests/drive_fakes.py``) and the local-filesystem drive in a temporary root."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from drive_fakes import FakeDriveStore

from puras_common.ids import new_id
from puras_drive.adapters.local_fs import LocalDrive
from puras_drive.app.ports import DriveStore


@pytest.fixture(params=["fake", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> DriveStore:
    if request.param == "fake":
        return FakeDriveStore()
    return LocalDrive(tmp_path / "drive")


async def test_a_project_has_its_drive_once_provisioned(store: DriveStore) -> None:
    p = new_id()
    assert not await store.is_provisioned(p)
    where = await store.provision(p)
    assert p in where
    assert await store.is_provisioned(p)


async def test_provisioning_again_changes_nothing(store: DriveStore) -> None:
    p = new_id()
    first = await store.provision(p)
    assert await store.provision(p) == first
    assert await store.is_provisioned(p)


async def test_projects_have_drives_of_their_own(store: DriveStore) -> None:
    p, q = new_id(), new_id()
    assert await store.provision(p) != await store.provision(q)
    r = new_id()
    assert not await store.is_provisioned(r)


@pytest.mark.parametrize("bad", ["", "..", "../etc", "a/b", "a" * 65, "p q"])
async def test_an_id_that_cannot_name_a_drive_is_refused(store: DriveStore, bad: str) -> None:
    with pytest.raises(ValueError, match="not a project id"):
        await store.provision(bad)
    with pytest.raises(ValueError, match="not a project id"):
        await store.is_provisioned(bad)


async def test_a_local_drive_is_a_folder_only_the_service_can_enter(tmp_path: Path) -> None:
    drive = LocalDrive(tmp_path / "root")
    p = new_id()
    path = Path(await drive.provision(p))
    assert path.parent == tmp_path / "root"
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
