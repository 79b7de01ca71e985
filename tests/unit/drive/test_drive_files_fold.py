"""The file table's fold (``domain.files``): writes replace, deletes remove, replays and
late events change nothing, and a path no writer could have sent is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from puras_common.drive_paths import DrivePathError
from puras_common.events.base import Envelope
from puras_common.events.types import (
    AnyEvent,
    DriveFilesDeleted,
    DriveFileWritten,
    DriveOrigin,
)
from puras_common.projection.base import RecordedEvent
from puras_drive.domain.files import DriveFile, FileKey, apply

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _rec(seq: int, event: AnyEvent, project: str = "p1") -> RecordedEvent:
    env = Envelope(
        id=f"e{seq}",
        type=event.type,
        v=1,
        at=T0 + timedelta(minutes=seq),
        project_id=project,
        aggregate_id=project,
    )
    return RecordedEvent(
        seq=seq, subject=f"ev.{project}.drive.{project}", envelope=env, event=event
    )


def _write(path: str, size: int = 1, origin: DriveOrigin | None = None) -> DriveFileWritten:
    return DriveFileWritten(
        path=path, bytes=size, sha256="", content_type="text/plain", origin=origin
    )


def _fold(*recs: RecordedEvent) -> dict[FileKey, DriveFile]:
    table: dict[FileKey, DriveFile] = {}
    for r in recs:
        apply(table, r)
    return table


def test_a_rewrite_keeps_the_first_time_and_takes_the_latest_writer() -> None:
    job = DriveOrigin(job_id="j1", skill="s", tool="media")
    table = _fold(_rec(1, _write("a.txt", 1)), _rec(2, _write("a.txt", 7, job)))
    row = table[("p1", "a.txt")]
    assert (row.bytes, row.job_id, row.skill, row.tool) == (7, "j1", "s", "media")
    assert row.created_at == T0 + timedelta(minutes=1)
    assert row.updated_at == T0 + timedelta(minutes=2)
    assert row.seq == 2


def test_deletes_by_path_and_by_prefix_touch_only_their_project() -> None:
    table = _fold(
        _rec(1, _write("a.txt")),
        _rec(2, _write("d/b.txt")),
        _rec(3, _write("d/e/c.txt")),
        _rec(4, _write("dx.txt")),
        _rec(5, _write("d/b.txt"), project="p2"),
        _rec(6, DriveFilesDeleted(paths=["a.txt"], deleted=1)),
        _rec(7, DriveFilesDeleted(prefix="d/", deleted=2)),
    )
    assert sorted(table) == [("p1", "dx.txt"), ("p2", "d/b.txt")]
    everything = _fold(_rec(1, _write("a/b.txt")), _rec(2, DriveFilesDeleted(prefix="")))
    assert everything == {}


def test_applying_an_event_again_or_late_changes_nothing() -> None:
    write1, write2 = _rec(1, _write("a.txt", 1)), _rec(3, _write("a.txt", 3))
    delete = _rec(2, DriveFilesDeleted(paths=["a.txt"]))
    table = _fold(write1, delete, write2)
    before = dict(table)
    for again in (write1, delete, write2):  # a replay, or a quarantined event retried
        apply(table, again)
    assert table == before
    assert table[("p1", "a.txt")].created_at == T0 + timedelta(minutes=3)


@pytest.mark.parametrize(
    "event",
    [
        _write("../x"),
        _write("a//b"),
        _write("dir/"),
        DriveFilesDeleted(paths=["/etc"]),
        DriveFilesDeleted(prefix="d"),
        DriveFilesDeleted(prefix="../"),
    ],
)
def test_a_path_no_writer_sends_is_refused(event: AnyEvent) -> None:
    with pytest.raises(DrivePathError):
        apply({}, _rec(1, event))
