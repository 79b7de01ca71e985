"""Server-Sent Events, the WHATWG ``text/event-stream`` rules, fed one line at a time."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SseEvent", "SseParser", "iter_sse"]


@dataclass(frozen=True)
class SseEvent:
    """One dispatched frame."""

    event: str
    data: str
    id: str | None

    def json(self) -> Any:
        return json.loads(self.data)


class SseParser:
    """Lines in, frames out; the last event id carries over to the frames after it."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> SseEvent | None:
        """The frame a blank line dispatches, else ``None``."""
        if line == "":
            return self.flush()
        if line.startswith(":"):
            return None  # a comment: the gateway's keep-alive ping
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            self._event = value
        elif field == "data":
            self._data.append(value)
        elif field == "id":
            self._id = value
        return None

    def flush(self) -> SseEvent | None:
        """The frame pending at the end of the stream (one without its blank line)."""
        out = None
        if self._data:
            out = SseEvent(event=self._event or "message", data="\n".join(self._data), id=self._id)
        self._event, self._data = "", []
        return out


def iter_sse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """The frames of the lines of a ``text/event-stream`` body."""
    parser = SseParser()
    for line in lines:
        frame = parser.feed(line)
        if frame is not None:
            yield frame
    last = parser.flush()
    if last is not None:
        yield last
