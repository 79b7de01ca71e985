"""What a job changed in its project's drive (D7, D8), from two scans of the folder.

A scan maps each file's canonical drive path to a fingerprint (inode, size, mtime): a
file is written by the job if it is new or its fingerprint changed between the scan at
the attempt's start and the one at its end, deleted if it is gone. Which part of the job
wrote it is read off the clock: an agent run notes the window of each tool call, and a
file last modified inside a window was written by that tool (``bash``, a user tool);
outside any window it was the skill's own code (``None``). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Changes", "Fingerprint", "ToolWindow", "diff", "tool_at"]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    inode: int
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class ToolWindow:
    """A tool call of an agent run: from ``start_ns`` to ``end_ns`` (wall clock)."""

    name: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class Changes:
    written: list[tuple[str, Fingerprint]]
    """New or changed files, by path."""
    deleted: list[str]


def diff(
    before: Mapping[str, Fingerprint], after: Mapping[str, Fingerprint], *, since_ns: int = 0
) -> Changes:
    """What changed from ``before`` to ``after``. A file modified at or after ``since_ns``
    counts as written even if ``before`` has it as it is now: the first scan runs while
    the job starts, so it may already see the job's first writes."""
    written = sorted(
        (p, fp) for p, fp in after.items() if before.get(p) != fp or fp.mtime_ns >= since_ns > 0
    )
    deleted = sorted(p for p in before if p not in after)
    return Changes(written=written, deleted=deleted)


def tool_at(mtime_ns: int, windows: Sequence[ToolWindow]) -> str | None:
    """The tool whose call was running when a file was last modified (the latest one
    that started before it, if calls overlap), else ``None``: the skill's own code."""
    found: ToolWindow | None = None
    for w in windows:
        if w.start_ns <= mtime_ns <= w.end_ns and (found is None or w.start_ns > found.start_ns):
            found = w
    return found.name if found is not None else None
