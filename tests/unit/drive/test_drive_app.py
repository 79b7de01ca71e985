"""The drive's handlers and use cases, built by ``bootstrap.build`` on in-memory ports
(the log folds into the file table as it is appended) and a local storage folder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from drive_fakes import FakeDriveLog, FakeDriveStore, FakeFileIndex, FakeWatch

from puras_common.events.types import DriveFilesDeleted, DriveFileWritten
from puras_common.ids import new_id
from puras_drive.adapters.local_fs_storage import LocalStorage
from puras_drive.bootstrap import App, build
from puras_drive.domain.errors import DriveApiError
from puras_drive.settings import DriveSettings

BASE = "https://api.example"


def _app(
    tmp_path: Path, store: FakeDriveStore | None = None
) -> tuple[App, FakeDriveLog, FakeWatch]:
    log, watch = FakeDriveLog(), FakeWatch()
    app = build(
        DriveSettings(env="dev", max_upload_bytes=1000),
        store=store or FakeDriveStore(),
        storage=LocalStorage(tmp_path),
        drive_log=log,
        index=FakeFileIndex(log),
        watch=watch,
        signing_secret=b"k",
    )
    return app, log, watch


async def _bytes(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def test_a_created_project_gets_its_drive_once_whatever_the_replays(tmp_path: Path) -> None:
    store = FakeDriveStore()
    app, _, _ = _app(tmp_path, store)
    p = new_id()
    for _ in range(3):  # the log is replayed from the start at every start
        await app.provisioner.project_created(p)
    assert await store.is_provisioned(p)
    assert store.provisions == 1


async def test_an_upload_is_recorded_and_settled_before_it_answers(tmp_path: Path) -> None:
    app, log, watch = _app(tmp_path)
    got = await app.service.upload("p1", "a/b.txt", _bytes(b"he", b"llo"), BASE)
    assert got["drive_path"] == "a/b.txt"
    assert got["full_path"] == "p1/a/b.txt"
    assert got["bytes"] == 5
    assert got["signed_url"].startswith(f"{BASE}/v1/drive/file/p1/a/b.txt?expires=")
    [rec] = log.events
    assert isinstance(rec.event, DriveFileWritten)
    assert rec.event.origin is None
    assert rec.event.sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert watch.waited == [rec.seq]
    listed = await app.service.list("p1", "a")
    assert [f["path"] for f in listed["files"]] == ["a/b.txt"]


async def test_an_upload_over_the_cap_is_413_and_records_nothing(tmp_path: Path) -> None:
    app, log, _ = _app(tmp_path)
    with pytest.raises(DriveApiError) as refused:
        await app.service.upload("p1", "big.bin", _bytes(b"x" * 600, b"x" * 401), BASE)
    assert refused.value.status == 413
    assert log.events == []
    assert not (tmp_path / "p1" / "big.bin").exists()


async def test_a_folder_delete_records_its_prefix_and_count(tmp_path: Path) -> None:
    app, log, _ = _app(tmp_path)
    for path in ("f/a.txt", "f/g/b.txt", "h.txt"):
        await app.service.upload("p1", path, _bytes(b"x"), BASE)
    assert await app.service.delete("p1", "f") == {"deleted": 2}
    event = log.events[-1].event
    assert isinstance(event, DriveFilesDeleted)
    assert (event.prefix, event.paths, event.deleted) == ("f/", [], 2)
    assert await app.service.delete("p1", "h.txt") == {"deleted": 1}
    assert (await app.service.list("p1", ""))["files"] == []
    with pytest.raises(DriveApiError) as missing:
        await app.service.delete("p1", "h.txt")
    assert missing.value.status == 404


async def test_origin_of_an_upload_is_all_null(tmp_path: Path) -> None:
    app, _, _ = _app(tmp_path)
    await app.service.upload("p1", "u.txt", _bytes(b"x"), BASE)
    assert await app.service.origin("p1", "u.txt") == {
        "job_id": None,
        "skill_name": None,
        "tool": None,
        "created_at": None,
    }
    with pytest.raises(DriveApiError) as other:
        await app.service.origin("p2", "u.txt")
    assert other.value.status == 404
