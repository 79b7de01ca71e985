"""The local-filesystem storage backend on its own: links a job made in its drive never
lead outside the project's folder, and, over random trees of files (Hypothesis), what is
written is listed and read back, and deleting a folder removes exactly what is under it
and nothing outside the project.

(What both backends promise is the contract suite,
``tests/integration/drive/test_storage_contract.py``.)
"""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from puras_common.ids import new_id
from puras_drive.adapters.local_fs import LocalDrive
from puras_drive.adapters.local_fs_storage import LocalStorage
from puras_drive.domain.objects import DriveConflict, DriveLinkRefused, DriveNotFound


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _snapshot(top: Path) -> dict[str, bytes | str]:
    """Every file (its bytes) and link (its target) under ``top``."""
    seen: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in filenames + dirnames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(top))
            if path.is_symlink():
                seen[rel] = f"-> {os.readlink(path)}"
            elif path.is_file():
                seen[rel] = path.read_bytes()
    return seen


@pytest.fixture
def world(tmp_path: Path) -> tuple[LocalStorage, str, Path, Path]:
    """A storage root with a project in it, and a secret folder outside the root."""
    root = tmp_path / "drive"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not the project's")
    p = new_id()
    (root / p).mkdir(parents=True)
    return LocalStorage(root), p, root / p, outside


# -- links -----------------------------------------------------------------------------------


async def test_a_link_to_outside_is_neither_listed_nor_read(
    world: tuple[LocalStorage, str, Path, Path],
) -> None:
    storage, p, project, outside = world
    os.symlink(outside, project / "escape")
    os.symlink(outside / "secret.txt", project / "secret.txt")
    (project / "real.txt").write_bytes(b"mine")
    assert [e.name for e in await storage.list_children(p, "")] == ["real.txt"]
    assert await storage.list_children(p, "escape") == []
    assert await storage.stat(p, "secret.txt") is None
    assert await storage.stat(p, "escape/secret.txt") is None
    with pytest.raises(DriveNotFound):
        async with storage.open(p, "escape/secret.txt"):
            pass
    assert [f.path async for f in storage.iter_files(p, "")] == ["real.txt"]


async def test_writing_through_a_link_is_refused_and_touches_nothing_outside(
    world: tuple[LocalStorage, str, Path, Path],
) -> None:
    storage, p, project, outside = world
    os.symlink(outside, project / "escape")
    before = _snapshot(outside)
    with pytest.raises(DriveLinkRefused, match="'escape' is a symbolic link"):
        await storage.put(p, "escape/new.txt", _chunks(b"x"))
    with pytest.raises(DriveLinkRefused):
        await storage.put(p, "escape/deeper/new.txt", _chunks(b"x"))
    assert _snapshot(outside) == before


async def test_a_file_written_over_a_link_replaces_the_link_not_its_target(
    world: tuple[LocalStorage, str, Path, Path],
) -> None:
    storage, p, project, outside = world
    os.symlink(outside / "secret.txt", project / "note.txt")
    await storage.put(p, "note.txt", _chunks(b"new"))
    assert not (project / "note.txt").is_symlink()
    assert (project / "note.txt").read_bytes() == b"new"
    assert (outside / "secret.txt").read_bytes() == b"not the project's"


async def test_deleting_never_follows_a_link(world: tuple[LocalStorage, str, Path, Path]) -> None:
    storage, p, project, outside = world
    (project / "dir").mkdir()
    (project / "dir" / "a.txt").write_bytes(b"a")
    os.symlink(outside, project / "dir" / "escape")
    os.symlink(outside / "secret.txt", project / "link.txt")
    before = _snapshot(outside)
    assert not await storage.delete_file(p, "link.txt")
    assert not await storage.delete_file(p, "dir/escape/secret.txt")
    assert await storage.delete_prefix(p, "dir/escape") == 0
    assert await storage.delete_prefix(p, "dir") == 1
    assert not (project / "dir").exists()
    assert _snapshot(outside) == before


async def test_a_project_folder_that_is_a_link_is_not_entered(tmp_path: Path) -> None:
    root = tmp_path / "drive"
    other = new_id()
    (root / other).mkdir(parents=True)
    (root / other / "theirs.txt").write_bytes(b"theirs")
    p = new_id()
    os.symlink(root / other, root / p)
    storage = LocalStorage(root)
    assert await storage.list_children(p, "") == []
    assert await storage.stat(p, "theirs.txt") is None
    with pytest.raises((DriveLinkRefused, DriveConflict)):
        await storage.put(p, "x.txt", _chunks(b"x"))
    assert await storage.delete_prefix(p, "") == 0
    assert (root / other / "theirs.txt").read_bytes() == b"theirs"
    assert sorted(os.listdir(root / other)) == ["theirs.txt"]


async def test_a_fifo_in_the_drive_does_not_hang_a_read(
    world: tuple[LocalStorage, str, Path, Path],
) -> None:
    storage, p, project, _ = world
    os.mkfifo(project / "pipe")
    assert await asyncio.wait_for(storage.stat(p, "pipe"), 5) is None
    assert await storage.list_children(p, "") == []


async def test_files_and_folders_it_makes_are_private_to_the_projects_folder_owner(
    tmp_path: Path,
) -> None:
    """The project's folder is private (0700 until the runner gives it to the project's
    jobs' uid, 0770); inside it, what the drive makes belongs to that folder's owner and
    group, so the project's jobs can read, change and delete uploads (D8)."""
    root = tmp_path / "drive"
    p = new_id()
    storage = LocalStorage(root)
    await storage.put(p, "a/b.txt", _chunks(b"x"))
    assert stat.S_IMODE((root / p).stat().st_mode) == 0o700
    assert stat.S_IMODE((root / p / "a").stat().st_mode) == 0o770
    assert stat.S_IMODE((root / p / "a" / "b.txt").stat().st_mode) == 0o660
    assert os.listdir(root / ".staging") == []  # nothing left half-written
    assert await LocalDrive(root).is_provisioned(p)
    if os.geteuid() == 0:
        # A project folder the runner handed over: new entries take its owner.
        os.chown(root / p, 54321, 54321)
        await storage.put(p, "c/d.txt", _chunks(b"y"))
        for made in (root / p / "c", root / p / "c" / "d.txt"):
            st = made.stat()
            assert (st.st_uid, st.st_gid) == (54321, 54321)


async def test_names_no_drive_path_can_address_are_not_listed(
    world: tuple[LocalStorage, str, Path, Path],
) -> None:
    storage, p, project, _ = world
    (project / "back\\slash").write_bytes(b"x")
    (project / "new\nline").write_bytes(b"x")
    (project / "fine.txt").write_bytes(b"x")
    assert [e.name for e in await storage.list_children(p, "")] == ["fine.txt"]


# -- random trees ------------------------------------------------------------------------------

_segment = st.sampled_from(["a", "b", "c", "a.txt", "é", "x y", "-", "a-b", "Z"])
_paths = st.lists(_segment, min_size=1, max_size=4).map("/".join)


def _without_conflicts(paths: list[str]) -> list[str]:
    """Drop a path whose name is another's folder (or the other way round): the tree a
    filesystem can hold."""
    kept: list[str] = []
    for path in paths:
        clash = any(path == k or path.startswith(k + "/") or k.startswith(path + "/") for k in kept)
        if not clash:
            kept.append(path)
    return kept


trees = st.lists(_paths, min_size=1, max_size=12).map(_without_conflicts)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees, st.data())
def test_a_random_tree_is_listed_read_back_and_deleted_by_prefix(
    paths: list[str], data: st.DataObject
) -> None:
    contents = {path: f"<{path}>".encode() for path in paths}
    prefix = data.draw(
        st.sampled_from(["", *{p.rsplit("/", 1)[0] + "/" for p in paths if "/" in p}])
    )
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp)
        asyncio.run(_check_tree(top, contents, prefix))


async def _check_tree(top: Path, contents: dict[str, bytes], prefix: str) -> None:
    root = top / "drive"
    p, neighbour = new_id(), new_id()
    (top / "outside").mkdir()
    (top / "outside" / "x").write_bytes(b"outside")
    storage = LocalStorage(root)
    await storage.put(neighbour, "a/a.txt", _chunks(b"neighbour"))
    untouched = {
        "outside": _snapshot(top / "outside"),
        "neighbour": _snapshot(root / neighbour),
    }
    for path, data in contents.items():
        await storage.put(p, path, _chunks(data))

    # Everything written is listed, folder by folder, and reads back.
    folders = {""} | {path.rsplit("/", 1)[0] for path in contents if "/" in path}
    for folder in folders:
        base = f"{folder}/" if folder else ""
        expected = sorted(
            {
                (
                    "file" if "/" not in path[len(base) :] else "folder",
                    path[len(base) :].split("/")[0],
                )
                for path in contents
                if path.startswith(base)
            },
            key=lambda kind_name: kind_name[1],
        )
        listed = await storage.list_children(p, base)
        assert [(e.kind, e.name) for e in listed] == expected
    for path, data in contents.items():
        async with storage.open(p, path) as stream:
            assert b"".join([c async for c in stream.chunks]) == data
    assert [f.path async for f in storage.iter_files(p, "")] == sorted(contents)

    # Deleting a folder removes exactly the files under it.
    under = {path for path in contents if path.startswith(prefix)}
    assert await storage.delete_prefix(p, prefix) == len(under)
    left = sorted(set(contents) - under)
    assert [f.path async for f in storage.iter_files(p, "")] == left
    on_disk = sorted(k for k, v in _snapshot(root / p).items() if isinstance(v, bytes))
    assert on_disk == left
    assert untouched == {
        "outside": _snapshot(top / "outside"),
        "neighbour": _snapshot(root / neighbour),
    }
