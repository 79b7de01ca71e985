"""A ``multipart/form-data`` body read part by part while it arrives.

``python-multipart``'s push parser is fed the request's chunks as they come; its
callbacks queue what it found (a part's headers, pieces of its data, its end), and
:meth:`MultipartReader.parts` hands the parts out in order, each with its data as an
async iterator that reads more of the request only when asked. So a file part streams
from the socket to storage without the upload ever being whole in memory.

A body that ends before its closing boundary is refused (the parser does not check
that itself): a file part cut short raises from its data iterator, so storage drops it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Final

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from puras_drive.domain.errors import DriveApiError

__all__ = ["MultipartReader", "Part", "boundary_of"]

MAX_FIELD_BYTES: Final = 64 * 1024
"""Largest text field (``path``) read into memory."""

_BEGIN, _HEADERS, _DATA, _END, _DONE = "begin", "headers", "data", "end", "done"


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` content type (400 for anything else)."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise DriveApiError.bad_request(
            "send the upload as multipart/form-data with the file in a field named file",
            code="not_multipart",
        )
    return boundary


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    _reader: MultipartReader = field(repr=False)
    _finished: bool = False

    async def chunks(self) -> AsyncIterator[bytes]:
        """The part's data, as it arrives (once)."""
        while not self._finished:
            kind, data = await self._reader.next_event()
            if kind == _DATA:
                yield data
            elif kind == _END:
                self._finished = True
            else:
                raise _truncated()

    async def text(self, limit: int = MAX_FIELD_BYTES) -> str:
        """The part as UTF-8 text (a form field), at most ``limit`` bytes."""
        got = bytearray()
        async for chunk in self.chunks():
            got += chunk
            if len(got) > limit:
                raise DriveApiError.bad_request(
                    f"the form field {self.name!r} is longer than {limit} bytes",
                    code="invalid_form",
                )
        try:
            return got.decode("utf-8")
        except UnicodeDecodeError:
            raise DriveApiError.bad_request(
                f"the form field {self.name!r} is not UTF-8 text", code="invalid_form"
            ) from None

    async def drain(self) -> None:
        async for _ in self.chunks():
            pass


class MultipartReader:
    def __init__(self, body: AsyncIterator[bytes], boundary: bytes, *, max_body: int) -> None:
        self._body = body
        self._max_body = max_body
        self._read = 0
        self._events: deque[tuple[str, bytes]] = deque()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        # One chunk may hold several parts' headers: each set is kept in order, apart.
        self._header_sets: deque[dict[str, bytes]] = deque()
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._on_part_begin,
                    "on_part_data": self._on_part_data,
                    "on_part_end": lambda: self._events.append((_END, b"")),
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_end": lambda: self._events.append((_DONE, b"")),
                },
            )
        except FormParserError as exc:
            raise DriveApiError.bad_request(
                f"malformed multipart body: {exc}", "invalid_form"
            ) from exc
        self._exhausted = False
        self._current: Part | None = None

    # -- the parser's callbacks ----------------------------------------------------------

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._events.append((_BEGIN, b""))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._events.append((_DATA, bytes(data[start:end])))

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self._headers[name] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        self._header_sets.append(self._headers)
        self._headers = {}
        self._events.append((_HEADERS, b""))

    # -- reading -------------------------------------------------------------------------

    async def next_event(self) -> tuple[str, bytes]:
        while not self._events:
            if self._exhausted:
                raise _truncated()
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                self._exhausted = True
                continue
            self._read += len(chunk)
            if self._read > self._max_body:
                raise DriveApiError.too_large(
                    f"the request body is larger than {self._max_body} bytes; send a smaller file"
                )
            try:
                self._parser.write(chunk)
            except FormParserError as exc:
                raise DriveApiError.bad_request(
                    f"malformed multipart body: {exc}", code="invalid_form"
                ) from exc
        return self._events.popleft()

    async def parts(self) -> AsyncIterator[Part]:
        """Every part, in order; a part its consumer left unread is skipped over."""
        while True:
            if self._current is not None and not self._current._finished:
                await self._current.drain()
            kind, _ = await self.next_event()
            if kind == _DONE:
                return
            if kind != _BEGIN:
                continue
            while (kind := (await self.next_event())[0]) != _HEADERS:
                if kind == _DONE:
                    raise _truncated()
            self._current = _part(self, self._header_sets.popleft())
            yield self._current


def _part(reader: MultipartReader, headers: dict[str, bytes]) -> Part:
    # Bytes, not text: browsers send a file's name as UTF-8 in this header.
    _, options = parse_options_header(headers.get("content-disposition", b""))
    name = options.get(b"name", b"").decode("utf-8", "replace")
    raw_filename = options.get(b"filename")
    filename = raw_filename.decode("utf-8", "replace") if raw_filename is not None else None
    return Part(
        name=name,
        filename=filename,
        content_type=headers.get("content-type", b"").decode("latin-1") or None,
        _reader=reader,
    )


def _truncated() -> DriveApiError:
    return DriveApiError.bad_request(
        "the multipart body ended before its closing boundary; send the whole upload",
        code="invalid_form",
    )
