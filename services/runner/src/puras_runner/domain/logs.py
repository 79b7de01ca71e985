"""Turning a job's stdout/stderr bytes into capped batches of log lines (J5, R3).

The engine feeds raw chunks as they arrive; the application drains what is complete at
most every ~100 ms and once at the end, and publishes one ``JobLogged`` event per run of
lines from the same stream. At most ``max_bytes`` of output (both streams together) are
kept; the rest is counted and dropped, and the last log event says ``truncated``.

Lines are storable text (Z9): bytes that are not UTF-8 and NUL characters both become
U+FFFD (see :data:`puras_common.textsafety.REPLACEMENT` for why that character).

Pure: no clock, no I/O; the caller decides when to drain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from puras_common.textsafety import escape_text

__all__ = ["LogBatch", "LogCollector", "Stream"]

Stream = Literal["stdout", "stderr"]


@dataclass(slots=True)
class LogBatch:
    """Consecutive complete lines of one stream."""

    stream: Stream
    lines: list[str] = field(default_factory=list)


def _decode(raw: bytes) -> str:
    # errors="replace" never yields a surrogate; a NUL byte decodes as itself.
    text = escape_text(raw.decode("utf-8", errors="replace"))
    return text[:-1] if text.endswith("\r") else text


class LogCollector:
    """Splits output into lines, keeps at most ``max_bytes`` of it, hands out batches."""

    def __init__(
        self,
        max_bytes: int,
        mask: Callable[[str], str] | None = None,
        mask_cut: Callable[[str], str] | None = None,
    ) -> None:
        """``mask`` is applied to every whole line (a chunk boundary inside a line never
        reaches it: lines are joined first); ``mask_cut`` also to a line the cap cut
        short, whose end may be the start of a secret."""
        if max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        self._budget = max_bytes
        self._mask = mask
        self._mask_cut = mask_cut
        self._partial: dict[Stream, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._ready: list[LogBatch] = []
        self.kept_bytes = 0
        """Bytes of output kept (newlines included)."""
        self.dropped_bytes = 0
        """Bytes of output received after the cap was reached."""

    @property
    def truncated(self) -> bool:
        return self.dropped_bytes > 0

    def feed(self, stream: Stream, data: bytes) -> None:
        """Take a chunk as read from the pipe (any size, lines may be split anywhere)."""
        if not data:
            return
        room = self._budget - self.kept_bytes
        if room <= 0:
            self.dropped_bytes += len(data)
            return
        if len(data) > room:
            self.dropped_bytes += len(data) - room
            data = data[:room]
        self.kept_bytes += len(data)
        buf = self._partial[stream]
        buf += data
        if b"\n" not in data:
            if self.truncated and buf:
                # Nothing more will ever be added to this line: it is complete as is.
                self._add(stream, [bytes(buf)], cut=True)
                buf.clear()
            return
        *complete, rest = bytes(buf).split(b"\n")
        buf[:] = rest
        self._add(stream, complete)
        if self.truncated and buf:
            self._add(stream, [bytes(buf)], cut=True)
            buf.clear()

    def _add(self, stream: Stream, raw_lines: list[bytes], *, cut: bool = False) -> None:
        lines = [_decode(r) for r in raw_lines]
        if self._mask is not None:
            lines = [self._mask(line) for line in lines]
        if cut and self._mask_cut is not None:
            lines = [self._mask_cut(line) for line in lines]
        if self._ready and self._ready[-1].stream == stream:
            self._ready[-1].lines.extend(lines)
        else:
            self._ready.append(LogBatch(stream, lines))

    def has_ready(self) -> bool:
        return bool(self._ready)

    def drain(self) -> list[LogBatch]:
        """Complete lines gathered since the last drain, in arrival order."""
        out, self._ready = self._ready, []
        return out

    def finish(self) -> list[LogBatch]:
        """Everything left, including a last line without its newline (the job ended)."""
        for stream in ("stdout", "stderr"):
            buf = self._partial[stream]
            if buf:
                self._add(stream, [bytes(buf)])
                buf.clear()
        return self.drain()
