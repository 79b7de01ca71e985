"""The composition root builds the storage the settings name: the filesystem by
default, or the S3 bucket on a real S3-compatible server (moto on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from drive_fakes import FakeDriveLog, FakeFileIndex, FakeWatch
from s3_fixtures import ACCESS_KEY, SECRET_KEY, S3Server

from puras_common.ids import new_id
from puras_drive.adapters.local_fs_storage import LocalStorage
from puras_drive.adapters.s3_storage import PART_SIZE, S3Storage
from puras_drive.bootstrap import App, Backend, backend, build
from puras_drive.domain.objects import DriveTooLarge
from puras_drive.settings import DriveSettings

pytestmark = pytest.mark.integration


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


_SECRETS = {
    "internal_token": "internal-token-of-the-backend-tests",
    "signing_secret": "signing-secret-of-the-backend-tests",
}


def _build(settings: DriveSettings, chosen: Backend) -> App:
    """The app on the chosen storage; the log and file table in memory (not used)."""
    drive_log = FakeDriveLog()
    return build(
        settings,
        store=chosen.store,
        storage=chosen.storage,
        drive_log=drive_log,
        index=FakeFileIndex(drive_log),
        watch=FakeWatch(),
    )


def _s3_settings(server: S3Server, bucket: str, *, create: bool) -> DriveSettings:
    return DriveSettings.model_validate(
        {
            "env": "test",
            **_SECRETS,
            "storage": "s3",
            "s3_endpoint": server.endpoint,
            "s3_bucket": bucket,
            "s3_access_key": ACCESS_KEY,
            "s3_secret_key": SECRET_KEY,
            "s3_create_bucket": create,
        }
    )


async def test_the_default_backend_is_the_filesystem_root(tmp_path: Path) -> None:
    settings = DriveSettings.model_validate({"env": "test", **_SECRETS, "root": tmp_path / "drive"})
    chosen = await backend(settings)
    assert isinstance(chosen.storage, LocalStorage)
    app = _build(settings, chosen)
    p = new_id()
    await app.provisioner.project_created(p)
    assert (tmp_path / "drive" / p).is_dir()
    await app.storage.put(p, "a.txt", _one(b"on disk"))
    assert (tmp_path / "drive" / p / "a.txt").read_bytes() == b"on disk"


async def test_the_s3_backend_writes_to_the_bucket(s3_server: S3Server, s3_bucket: str) -> None:
    settings = _s3_settings(s3_server, s3_bucket, create=False)
    chosen = await backend(settings)
    assert isinstance(chosen.storage, S3Storage)
    app = _build(settings, chosen)
    p = new_id()
    await app.provisioner.project_created(p)  # a bucket needs no folder: nothing to do
    assert await chosen.store.is_provisioned(p)
    await app.storage.put(p, "up/a.txt", _one(b"in the bucket"))
    got = s3_server.client().get_object(s3_bucket, f"drive/{p}/up/a.txt")
    try:
        assert got.read() == b"in the bucket"
    finally:
        got.close()
        got.release_conn()
    assert chosen.where == f"{s3_server.endpoint}/{s3_bucket}"


async def test_a_missing_bucket_stops_the_start_unless_it_may_be_made(
    s3_server: S3Server,
) -> None:
    bucket = f"made-{new_id().lower()}"[:63]
    with pytest.raises(RuntimeError, match="does not exist; create it"):
        await backend(_s3_settings(s3_server, bucket, create=False))
    await backend(_s3_settings(s3_server, bucket, create=True))
    assert s3_server.client().bucket_exists(bucket)


async def test_a_refused_multipart_upload_is_aborted(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    storage = S3Storage(client, s3_bucket)

    async def three_parts() -> AsyncIterator[bytes]:
        for _ in range(3 * PART_SIZE // 65536):
            yield b"x" * 65536

    with pytest.raises(DriveTooLarge):
        await storage.put(new_id(), "big.bin", three_parts(), max_bytes=2 * PART_SIZE + 1)
    # No upload left half-done in the bucket, holding its parts (and their storage).
    pending = client._list_multipart_uploads(s3_bucket)  # the SDK has no public listing
    assert pending.uploads == []
    assert list(client.list_objects(s3_bucket, recursive=True)) == []
