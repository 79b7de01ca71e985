"""The drive's storage port (``puras_drive.app.ports.DriveStorage``): one suite, run
against the local-filesystem backend in a temporary root and against the S3 backend on a
real S3-compatible server on loopback (moto, ``tests/s3_fixtures.py``)."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from s3_fixtures import S3Server

from puras_common.drive_paths import DrivePathError
from puras_common.ids import new_id
from puras_drive.adapters.local_fs_storage import LocalStorage
from puras_drive.adapters.s3_storage import PART_SIZE, S3Storage
from puras_drive.app.ports import DriveStorage
from puras_drive.domain.objects import (
    DriveConflict,
    DriveNotFound,
    DriveTooLarge,
    FileInfo,
    FolderInfo,
)

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


@pytest.fixture(params=["filesystem", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> DriveStorage:
    if request.param == "filesystem":
        return LocalStorage(tmp_path / "drive")
    server: S3Server = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return S3Storage(server.client(), bucket)


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _sized(total: int, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    """``total`` bytes (a pattern that differs per chunk) without holding them."""
    sent = 0
    n = 0
    while sent < total:
        size = min(chunk, total - sent)
        yield bytes([n % 251]) * size
        sent += size
        n += 1


def _sha_of_sized(total: int, chunk: int = 64 * 1024) -> str:
    digest = hashlib.sha256()
    sent, n = 0, 0
    while sent < total:
        size = min(chunk, total - sent)
        digest.update(bytes([n % 251]) * size)
        sent += size
        n += 1
    return digest.hexdigest()


async def _read(storage: DriveStorage, project: str, path: str) -> bytes:
    async with storage.open(project, path) as stream:
        return b"".join([c async for c in stream.chunks])


async def _put(storage: DriveStorage, project: str, files: Iterable[tuple[str, bytes]]) -> None:
    for path, data in files:
        await storage.put(project, path, _chunks(data))


def _names(entries: list[FileInfo | FolderInfo]) -> list[tuple[str, str]]:
    return [(e.kind, e.name) for e in entries]


# -- writing and reading -------------------------------------------------------------------


async def test_what_is_put_is_read_back_with_its_size_hash_and_type(storage: DriveStorage) -> None:
    p = new_id()
    before = datetime.now(UTC) - timedelta(seconds=5)
    stored = await storage.put(p, "uploads/pic.png", _chunks(PNG[:3], PNG[3:]))
    assert stored.path == "uploads/pic.png"
    assert stored.size == len(PNG)
    assert stored.sha256 == hashlib.sha256(PNG).hexdigest()
    assert stored.content_type == "image/png"
    assert await _read(storage, p, "uploads/pic.png") == PNG
    info = await storage.stat(p, "uploads/pic.png")
    assert info is not None
    assert (info.path, info.size, info.content_type) == ("uploads/pic.png", len(PNG), "image/png")
    assert before <= info.modified <= datetime.now(UTC) + timedelta(seconds=5)
    async with storage.open(p, "uploads/pic.png") as stream:
        assert stream.info == info


@pytest.mark.parametrize(
    ("name", "data", "content_type"),
    [
        ("notes", b"plain words\n", "text/plain"),
        ("data.json", b'{"a": 1}', "application/json"),
        ("blob", b"\x00\x01\x02\xff", "application/octet-stream"),
        ("empty.txt", b"", "text/plain"),
        ("photo.txt", b"\xff\xd8\xff\xe0rest", "image/jpeg"),  # the bytes win over the name
    ],
)
async def test_the_content_type_is_sniffed_the_same_by_put_and_stat(
    storage: DriveStorage, name: str, data: bytes, content_type: str
) -> None:
    p = new_id()
    stored = await storage.put(p, name, _chunks(data))
    assert stored.content_type == content_type
    info = await storage.stat(p, name)
    assert info is not None
    assert info.content_type == content_type
    assert info.size == len(data)


async def test_a_large_file_streams_through_in_parts(storage: DriveStorage) -> None:
    p = new_id()
    total = 2 * PART_SIZE + 12345  # three parts of a multipart upload on S3
    stored = await storage.put(p, "big/file.bin", _sized(total))
    assert stored.size == total
    assert stored.sha256 == _sha_of_sized(total)
    digest = hashlib.sha256()
    got = 0
    async with storage.open(p, "big/file.bin") as stream:
        async for chunk in stream.chunks:
            digest.update(chunk)
            got += len(chunk)
    assert (got, digest.hexdigest()) == (total, stored.sha256)


async def test_putting_again_replaces_the_file(storage: DriveStorage) -> None:
    p = new_id()
    await storage.put(p, "a.txt", _chunks(b"first version"))
    stored = await storage.put(p, "a.txt", _chunks(b"second"))
    assert stored.size == 6
    assert await _read(storage, p, "a.txt") == b"second"


async def test_a_path_is_stored_in_its_canonical_form(storage: DriveStorage) -> None:
    p = new_id()
    stored = await storage.put(p, "./a//b/./c.txt", _chunks(b"x"))
    assert stored.path == "a/b/c.txt"
    assert await _read(storage, p, "a/b/c.txt") == b"x"
    assert _names(await storage.list_children(p, "a")) == [("folder", "b")]


@pytest.mark.parametrize("cap_and_size", [(1000, 1001), (PART_SIZE + 10, PART_SIZE + 2_000_000)])
async def test_past_the_cap_nothing_is_stored(
    storage: DriveStorage, cap_and_size: tuple[int, int]
) -> None:
    cap, size = cap_and_size
    p = new_id()
    with pytest.raises(DriveTooLarge, match=f"larger than {cap} bytes"):
        await storage.put(p, "up/too-big.bin", _sized(size), max_bytes=cap)
    assert await storage.stat(p, "up/too-big.bin") is None
    assert await storage.list_children(p, "") == []
    stored = await storage.put(p, "up/fits.bin", _sized(cap), max_bytes=cap)
    assert stored.size == cap


async def test_a_failing_source_stores_nothing(storage: DriveStorage) -> None:
    p = new_id()
    await storage.put(p, "keep.txt", _chunks(b"old"))

    async def broken() -> AsyncIterator[bytes]:
        yield b"some bytes"
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        await storage.put(p, "keep.txt", broken())
    assert await _read(storage, p, "keep.txt") == b"old"
    with pytest.raises(ConnectionResetError):
        await storage.put(p, "new/file.txt", broken())
    assert _names(await storage.list_children(p, "")) == [("file", "keep.txt")]


async def test_a_missing_file_is_not_found(storage: DriveStorage) -> None:
    p = new_id()
    await storage.put(p, "a/b.txt", _chunks(b"x"))
    assert await storage.stat(p, "a/c.txt") is None
    assert await storage.stat(p, "a") is None  # a folder is not a file
    with pytest.raises(DriveNotFound, match=r"no file 'a/c\.txt'"):
        async with storage.open(p, "a/c.txt"):
            pass
    with pytest.raises(DriveNotFound):
        async with storage.open(p, "a"):
            pass


async def test_a_file_and_a_folder_cannot_share_a_name(storage: DriveStorage) -> None:
    p = new_id()
    await storage.put(p, "a/x.txt", _chunks(b"x"))
    with pytest.raises(DriveConflict, match="'a' is a folder"):
        await storage.put(p, "a", _chunks(b"y"))
    with pytest.raises(DriveConflict, match=r"'a/x\.txt' is a file"):
        await storage.put(p, "a/x.txt/y.txt", _chunks(b"y"))
    assert _names(await storage.list_children(p, "a")) == [("file", "x.txt")]
    assert _names(await storage.list_children(p, "")) == [("folder", "a")]


# -- listing -------------------------------------------------------------------------------


async def test_a_listing_shows_the_direct_children(storage: DriveStorage) -> None:
    p = new_id()
    await _put(
        storage,
        p,
        [
            ("top.txt", b"1"),
            ("docs/a.md", b"22"),
            ("docs/deep/b.md", b"333"),
            ("docs/deep/er/c.md", b"4444"),
            ("docs-old/x", b"5"),
            ("zz/y", b""),
        ],
    )
    root = await storage.list_children(p, "")
    assert _names(root) == [
        ("folder", "docs"),
        ("folder", "docs-old"),
        ("file", "top.txt"),
        ("folder", "zz"),
    ]
    docs = await storage.list_children(p, "docs/")
    assert _names(docs) == [("file", "a.md"), ("folder", "deep")]
    assert await storage.list_children(p, "docs") == docs
    file = next(e for e in docs if isinstance(e, FileInfo))
    assert (file.path, file.size) == ("docs/a.md", 2)
    assert abs(file.modified - datetime.now(UTC)) < timedelta(minutes=1)
    folder = next(e for e in docs if isinstance(e, FolderInfo))
    assert folder.path == "docs/deep"
    assert await storage.list_children(p, "nothing/here") == []
    assert await storage.list_children(p, "top.txt") == []


async def test_every_file_under_a_prefix_comes_in_path_order(storage: DriveStorage) -> None:
    p = new_id()
    paths = ["a/b", "a-c", "a/b2/c", "a/a", "a.txt", "b/x", "a/b1", "é/1", "Z"]
    await _put(storage, p, [(path, path.encode()) for path in paths])
    everything = [f.path async for f in storage.iter_files(p, "")]
    assert everything == sorted(paths)
    under_a = [(f.path, f.size) async for f in storage.iter_files(p, "a")]
    assert under_a == [(path, len(path)) for path in sorted(paths) if path.startswith("a/")]
    assert [f async for f in storage.iter_files(p, "missing/")] == []


# -- deleting ------------------------------------------------------------------------------


async def test_deleting_a_file_removes_it_and_folders_it_leaves_empty(
    storage: DriveStorage,
) -> None:
    p = new_id()
    await _put(storage, p, [("a/b/c.txt", b"1"), ("a/keep.txt", b"2")])
    assert not await storage.delete_file(p, "a/b")  # a folder is left alone
    assert await storage.delete_file(p, "a/b/c.txt")
    assert not await storage.delete_file(p, "a/b/c.txt")
    assert await storage.stat(p, "a/b/c.txt") is None
    assert _names(await storage.list_children(p, "a")) == [("file", "keep.txt")]
    assert await storage.delete_file(p, "a/keep.txt")
    assert await storage.list_children(p, "") == []


async def test_deleting_a_folder_removes_exactly_what_is_under_it(storage: DriveStorage) -> None:
    p = new_id()
    await _put(
        storage,
        p,
        [
            ("a/1", b"x"),
            ("a/b/2", b"x"),
            ("a/b/c/3", b"x"),
            ("ab/4", b"x"),
            ("a.txt", b"x"),
            ("z/a/5", b"x"),
        ],
    )
    assert await storage.delete_prefix(p, "a/b") == 2
    assert [f.path async for f in storage.iter_files(p, "")] == ["a.txt", "a/1", "ab/4", "z/a/5"]
    assert await storage.delete_prefix(p, "a/") == 1
    assert _names(await storage.list_children(p, "")) == [
        ("file", "a.txt"),
        ("folder", "ab"),
        ("folder", "z"),
    ]
    assert await storage.delete_prefix(p, "missing/") == 0
    assert await storage.delete_prefix(p, "a.txt") == 0  # a file is not a folder
    assert await storage.delete_prefix(p, "") == 3
    assert await storage.list_children(p, "") == []
    await storage.put(p, "again.txt", _chunks(b"the drive is still there"))
    assert await storage.stat(p, "again.txt") is not None


# -- isolation -----------------------------------------------------------------------------


async def test_projects_never_see_each_other(storage: DriveStorage) -> None:
    p, q = new_id(), new_id()
    await storage.put(p, "shared/name.txt", _chunks(b"p's"))
    await storage.put(q, "shared/name.txt", _chunks(b"q's"))
    assert await _read(storage, p, "shared/name.txt") == b"p's"
    assert await _read(storage, q, "shared/name.txt") == b"q's"
    assert await storage.delete_prefix(p, "") == 1
    assert await _read(storage, q, "shared/name.txt") == b"q's"
    assert await storage.list_children(p, "") == []
    r = new_id()
    assert await storage.list_children(r, "") == []
    assert await storage.stat(r, "shared/name.txt") is None


@pytest.mark.parametrize("bad", ["", "..", "../x", "a/b", "p q", "a" * 65])
async def test_an_id_that_cannot_name_a_drive_is_refused(storage: DriveStorage, bad: str) -> None:
    with pytest.raises(ValueError, match="not a project id"):
        await storage.put(bad, "x.txt", _chunks(b"x"))
    with pytest.raises(ValueError, match="not a project id"):
        await storage.list_children(bad, "")
    with pytest.raises(ValueError, match="not a project id"):
        await storage.delete_prefix(bad, "")


@pytest.mark.parametrize(
    "bad", ["../x.txt", "a/../../x", "/etc/passwd", "a\\b", "a\x00b", "%2e%2e/x", "a/%2E%2E/b"]
)
async def test_a_traversing_path_is_refused_by_every_operation(
    storage: DriveStorage, bad: str
) -> None:
    p = new_id()
    with pytest.raises(DrivePathError):
        await storage.put(p, bad, _chunks(b"x"))
    with pytest.raises(DrivePathError):
        await storage.stat(p, bad)
    with pytest.raises(DrivePathError):
        async with storage.open(p, bad):
            pass
    with pytest.raises(DrivePathError):
        await storage.delete_file(p, bad)
    with pytest.raises(DrivePathError):
        await storage.delete_prefix(p, bad)
    with pytest.raises(DrivePathError):
        await storage.list_children(p, bad)
    with pytest.raises(DrivePathError):
        [f async for f in storage.iter_files(p, bad)]
    assert [f async for f in storage.iter_files(p, "")] == []


async def test_a_folder_path_is_not_a_file_path(storage: DriveStorage) -> None:
    with pytest.raises(DrivePathError, match="names a folder"):
        await storage.put(new_id(), "uploads/", _chunks(b"x"))


async def test_an_upload_never_holds_the_whole_file(storage: DriveStorage) -> None:
    total = 10 * PART_SIZE  # 50 MiB, the upload cap
    tracemalloc.start()
    try:
        stored = await storage.put(new_id(), "big.bin", _sized(total))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert stored.size == total
    # A few parts' worth at most (the S3 client copies a part to sign and send it),
    # whatever the file's size.
    assert peak < 4 * PART_SIZE, f"{peak} bytes held for a {total}-byte upload"
