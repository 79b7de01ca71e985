"""The runner writes, reads and deletes in a project's drive folder as root (a media
output, the S3 sync), where the project's jobs may have made links: none of it ever goes
through a link, so no job can make the runner touch a host file or another project's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from puras_runner.adapters.drive_writer import (
    open_drive_file,
    remove_drive_file,
    stat_drive_file,
    write_drive_file,
)


def test_the_runner_writes_through_no_link_a_job_made(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    src = tmp_path / "src"
    src.write_bytes(b"payload")
    assert write_drive_file(drive, "media/out.png", src, uid=None) == 7
    assert (drive / "media" / "out.png").read_bytes() == b"payload"
    os.symlink(outside, drive / "evil")
    with pytest.raises(ValueError, match="not a folder"):
        write_drive_file(drive, "evil/x.png", src, uid=None)
    assert list(outside.iterdir()) == []
    # A link where the file goes is replaced, its target left alone.
    (outside / "victim").write_text("keep")
    os.symlink(outside / "victim", drive / "media" / "swap.png")
    write_drive_file(drive, "media/swap.png", src, uid=None)
    assert (outside / "victim").read_text() == "keep"
    assert not (drive / "media" / "swap.png").is_symlink()
    with pytest.raises(ValueError, match=r"'\.\.' segment"):
        write_drive_file(drive, "../escape.png", src, uid=None)


def test_reads_and_deletes_by_the_runner_stop_at_a_link(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    drive.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("host file")
    os.symlink(outside, drive / "dir")
    assert stat_drive_file(drive, "dir/f") is None
    assert open_drive_file(drive, "dir/f") is None
    assert remove_drive_file(drive, "dir/f") is False
    assert (outside / "f").exists()
    (drive / "real").write_text("r")
    f = open_drive_file(drive, "real")
    assert f is not None
    with f:
        assert f.read() == b"r"
    assert remove_drive_file(drive, "real") is True
