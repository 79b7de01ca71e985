"""The request line and headers, checked before any route sees them (Z9, pure).

Path parameters (job ids, key prefixes), query values and header values end up in
Postgres queries, subject names and events. The HTTP parser already refuses raw control
bytes in them; what it lets through is percent-encoding (``%00``, ``%0a``, ``%ff``),
which routing decodes. Here that decoded text must be valid UTF-8 without control
characters, or the request is a 400 that names the parameter or header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote_to_bytes

from puras_common.textsafety import find_control
from puras_gateway.domain.errors import ApiError

__all__ = ["check_request_target"]

_RAW_CONTROL: Final = re.compile(rb"[\x00-\x1f\x7f]")
_RAW_CONTROL_BUT_TAB: Final = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def check_request_target(
    raw_path: bytes, query_string: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> ApiError | None:
    """The first problem of a request's path, query or headers, as the error to answer."""
    return _check_path(raw_path) or _check_query(query_string) or _check_headers(headers)


def _needs_decoding(raw: bytes) -> bool:
    return b"%" in raw or not raw.isascii() or _RAW_CONTROL.search(raw) is not None


def _decoded(raw: bytes) -> tuple[str | None, str | None]:
    """``(text, None)``, or ``(None, why)`` when the percent-decoded bytes are not UTF-8."""
    data = unquote_to_bytes(raw)
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"is not valid UTF-8 once percent-decoded (byte 0x{data[exc.start]:02x})"


def _check_path(raw_path: bytes) -> ApiError | None:
    if not _needs_decoding(raw_path):
        return None
    for segment in raw_path.split(b"/"):
        text, why = _decoded(segment)
        if text is not None:
            found = find_control(text)
            if found is None:
                continue
            why = f"contains {found}"
        shown = json.dumps(unquote_to_bytes(segment).decode("utf-8", "replace"))
        return ApiError.bad_request(
            f"the URL path segment {shown} {why}: ids and names in a path are "
            "printable text; check how the URL was built",
            code="invalid_request",
        )
    return None


def _check_query(query: bytes) -> ApiError | None:
    if not query or not _needs_decoding(query):
        return None
    for part in query.split(b"&"):
        raw_name, _, raw_value = part.partition(b"=")
        name, why = _decoded(raw_name.replace(b"+", b" "))
        shown = name if name is not None else raw_name.decode("latin-1")
        where = f"query parameter name {json.dumps(shown)}"
        if name is not None:
            found = find_control(name)
            if found is not None:
                why = f"contains {found}"
            else:
                value, why = _decoded(raw_value.replace(b"+", b" "))
                where = f"query parameter `{name}`"
                if value is not None:
                    found = find_control(value)
                    why = f"contains {found}" if found is not None else None
        if why is not None:
            return ApiError.bad_request(
                f"{where} {why}: query values are printable UTF-8 text; remove the "
                "character (or percent-encode the intended text correctly)",
                code="invalid_query",
            )
    return None


def _check_headers(headers: Iterable[tuple[bytes, bytes]]) -> ApiError | None:
    for name, value in headers:
        m = _RAW_CONTROL_BUT_TAB.search(value)
        if m is not None:
            found = find_control(value.decode("latin-1"), allow_tab=True)
            return ApiError.bad_request(
                f"header `{name.decode('latin-1')}` has {found}: header values are one "
                "line of printable text",
                code="invalid_request",
            )
    return None
