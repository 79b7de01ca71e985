"""What a job changed in its drive folder: the diff of two scans, the tool by the clock
(the runner's writes through a job's links: tests/security/test_runner_drive_links.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any, cast

import pytest

from puras_runner.adapters.drive_files import INLINE_SCAN_ENTRIES, DriveFiles
from puras_runner.adapters.drive_scan import ScanOverBudget, scan_drive
from puras_runner.domain.drive_changes import Fingerprint, ToolWindow, diff, tool_at


def test_new_changed_and_gone_files_are_told_apart() -> None:
    a, b = Fingerprint(1, 3, 10), Fingerprint(2, 4, 20)
    changes = diff({"keep": a, "edit": a, "gone": b}, {"keep": a, "edit": b, "new": a})
    assert [p for p, _ in changes.written] == ["edit", "new"]
    assert changes.deleted == ["gone"]


def test_a_file_modified_since_the_start_counts_even_if_the_first_scan_saw_it() -> None:
    fp = Fingerprint(1, 3, 1_000)
    assert diff({"x": fp}, {"x": fp}, since_ns=999).written == [("x", fp)]
    assert diff({"x": fp}, {"x": fp}, since_ns=1_001).written == []


def test_the_tool_is_the_call_running_when_the_file_was_modified() -> None:
    windows = [ToolWindow("bash", 100, 200), ToolWindow("resize", 150, 180)]
    assert tool_at(120, windows) == "bash"
    assert tool_at(160, windows) == "resize"  # the later call of two overlapping
    assert tool_at(250, windows) is None  # the skill's own code


def test_a_scan_lists_files_a_drive_path_names_and_never_follows_links(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    (drive / "a" / "b").mkdir(parents=True)
    (drive / "a" / "b" / "c.txt").write_text("x")
    (drive / "top.bin").write_bytes(b"12")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    os.symlink(outside, drive / "link")
    os.symlink(outside / "secret", drive / "filelink")
    (drive / "a\\b").write_text("no drive path names this")
    (drive / ".x.part").write_text("a write in progress")
    found = scan_drive(drive)
    assert sorted(found) == ["a/b/c.txt", "top.bin"]
    assert found["top.bin"].size == 2
    assert scan_drive(tmp_path / "missing") == {}


def test_a_scan_past_its_budget_of_entries_is_given_up(tmp_path: Path) -> None:
    drive = tmp_path / "drive"
    (drive / "d").mkdir(parents=True)
    for i in range(5):
        (drive / "d" / f"f{i}").write_text("x")
    assert len(scan_drive(drive, budget=6)) == 5  # the folder and its five files
    with pytest.raises(ScanOverBudget):
        scan_drive(drive, budget=5)


async def test_a_small_drive_is_scanned_on_the_loop_a_large_one_in_a_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[object] = []
    real = asyncio.to_thread

    async def counted(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        threads.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counted)
    files = DriveFiles(cast(Any, None), tmp_path, None)
    drive = tmp_path / "p1"
    drive.mkdir()
    (drive / "a.txt").write_text("x")
    assert sorted(await files.scan("p1")) == ["a.txt"]
    assert threads == []
    for i in range(INLINE_SCAN_ENTRIES + 1):
        (drive / f"n{i}").write_text("x")
    big = await files.scan("p1")
    assert len(big) == INLINE_SCAN_ENTRIES + 2
    assert big == scan_drive(drive)
    assert len(threads) == 1
    await files.scan("p1")  # known to be large: straight to the thread
    assert len(threads) == 2
    for i in range(INLINE_SCAN_ENTRIES + 1):
        (drive / f"n{i}").unlink()
    assert sorted(await files.scan("p1")) == ["a.txt"]  # shrunk: back on the loop next time
    assert sorted(await files.scan("p1")) == ["a.txt"]
    assert len(threads) == 3
