"""Text every store and wire format of the platform can hold (Z9).

Everything a client sends and everything a job prints ends up in JSON events and in
Postgres ``text``/``jsonb`` columns. Two kinds of Python text cannot make that trip:

* NUL (U+0000): Postgres refuses it in ``text`` and as ``\\u0000`` in ``jsonb``;
* lone surrogates (U+D800-U+DFFF without their pair): they are not Unicode characters,
  so they have no UTF-8 encoding and every JSON encoder refuses or mangles them.

A projector that meets either fails on the event, and every replay meets it again, so
such text must never be written into an event. At the edges where clients speak (the
HTTP API, deployment bundles) it is refused with a message naming where it is
(:func:`find_unsafe`, :func:`unsafe_char`); in a job's own output, which is data the
job produced and must not be lost, it is replaced (:func:`escape_text`,
:func:`escape_json`). Nesting depth is bounded at the same places (:data:`MAX_JSON_DEPTH`):
deep JSON costs recursion in every decoder, validator and encoder on its way, and
Postgres refuses ``jsonb`` nested beyond its stack.

Pure: no I/O, no third-party imports beyond the standard library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Final, NamedTuple

__all__ = [
    "MAX_JSON_DEPTH",
    "REPLACEMENT",
    "NestingTooDeep",
    "TextIssue",
    "describe_char",
    "escape_json",
    "escape_text",
    "find_control",
    "find_unsafe",
    "path_text",
    "unsafe_char",
]

MAX_JSON_DEPTH: Final = 64
"""Deepest nesting of objects and arrays accepted in a job's inputs and result (the
value itself is level 1: ``{"a": {"b": 1}}`` has depth 2)."""

REPLACEMENT: Final = "\ufffd"
"""What NUL and lone surrogates in a job's output become: U+FFFD REPLACEMENT CHARACTER.

Chosen over a visible ``\\u0000`` escape because it is what invalid UTF-8 in the same
output already becomes (``bytes.decode(errors="replace")``), so a reader sees one sign
for "a character that could not be kept" whatever its cause; because it replaces one
code point by one, so ``maxLength``/``minLength`` in an ``output_schema`` mean the same
before and after; and because it can never be confused with text a skill printed
(a skill that prints the six characters ``\\u0000`` gets exactly those back)."""

_UNSAFE: Final = re.compile("[\x00\ud800-\udfff]")
# Single-line values (header values, query parameters, path segments): also C0 control
# characters and DEL. A tab is allowed in header values (HTTP permits it there).
_CONTROL: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_CONTROL_BUT_TAB: Final = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
_IDENT: Final = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")
_MAX_SHOWN_PATH: Final = 200


class TextIssue(NamedTuple):
    """Where a value holds something the platform cannot store, and what to do."""

    path: str
    """``inputs.text``, ``inputs["a b"][3]``: the root, then ``.key`` or ``[index]``."""
    message: str
    """What is there and what to do, without the path."""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class NestingTooDeep(ValueError):
    """:func:`escape_json` met a value nested deeper than its limit; ``path`` is where."""

    def __init__(self, path: str, max_depth: int) -> None:
        self.path = path
        self.max_depth = max_depth
        super().__init__(f"{path}: nested deeper than {max_depth} levels")


def describe_char(ch: str) -> str:
    """``a NUL character (U+0000)``, ``a lone surrogate (U+D800)``, ``a control ...``."""
    code = ord(ch)
    if code == 0:
        what = "a NUL character"
    elif 0xD800 <= code <= 0xDFFF:
        what = "a lone surrogate"
    else:
        what = "a control character"
    return f"{what} (U+{code:04X})"


def unsafe_char(text: str) -> str | None:
    """What makes ``text`` unstorable (``a NUL character (U+0000) at index 3``), or None."""
    m = _UNSAFE.search(text)
    if m is None:
        return None
    return f"{describe_char(m.group())} at index {m.start()}"


def find_control(text: str, *, allow_tab: bool = False) -> str | None:
    """Like :func:`unsafe_char`, also for control characters (single-line values)."""
    m = (_CONTROL_BUT_TAB if allow_tab else _CONTROL).search(text)
    if m is None:
        return None
    return f"{describe_char(m.group())} at index {m.start()}"


def _fix_hint(found: str) -> str:
    if "surrogate" in found:
        return (
            "it is not a Unicode character: send valid UTF-8 text (a character beyond "
            "U+FFFF is one surrogate pair in a \\u escape, never half of one)"
        )
    return (
        "Postgres and JSON consumers cannot store it: remove it "
        "(send binary data base64-encoded, or as a file through the drive)"
    )


def path_text(root: str, path: Iterable[str | int]) -> str:
    """``root`` then ``.key`` per plain key, ``["a b"]`` per other key, ``[i]`` per index.

    Keys are shown JSON-escaped, so a path that names a key holding a NUL shows it as
    ``\\u0000``; a very long path is cut in the middle.
    """
    out = root
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    if len(out) > _MAX_SHOWN_PATH:
        half = _MAX_SHOWN_PATH // 2
        out = f"{out[:half]}…{out[-half:]}"
    return out


def find_unsafe(
    value: object, *, root: str = "", max_depth: int | None = MAX_JSON_DEPTH
) -> TextIssue | None:
    """The first string or key in a JSON-like ``value`` that cannot be stored, or a
    container nested deeper than ``max_depth`` (``None``: no limit), or ``None``.

    One iterative pass (no recursion, whatever the depth); objects are dicts, arrays
    lists or tuples, every other value is a leaf.
    """
    # Paths are linked (key, parent) pairs, built into a list only for the answer: a
    # copied list per node would cost time quadratic in the depth.
    stack: list[tuple[object, _Link, int]] = [(value, None, 1)]
    while stack:
        node, link, depth = stack.pop()
        if isinstance(node, str):
            found = unsafe_char(node)
            if found is not None:
                return TextIssue(
                    path_text(root, _unlink(link)), f"contains {found}; {_fix_hint(found)}"
                )
            continue
        if isinstance(node, dict):
            items: Iterable[tuple[str | int, object]] = node.items()
        elif isinstance(node, list | tuple):
            items = enumerate(node)
        else:
            continue
        if max_depth is not None and depth > max_depth:
            return TextIssue(
                path_text(root, _unlink(link)),
                f"is nested deeper than {max_depth} levels of objects and arrays; "
                "flatten it (large structured data can go to the drive as a file)",
            )
        children = []
        for key, sub in items:
            if isinstance(key, str):
                found = unsafe_char(key)
                if found is not None:
                    return TextIssue(
                        path_text(root, _unlink((key, link))),
                        f"this key contains {found}; {_fix_hint(found)}",
                    )
            children.append((sub, (key, link), depth + 1))
        # Reversed: the first offending item in document order is the one reported.
        stack.extend(reversed(children))
    return None


_Link = tuple[str | int, "_Link"] | None


def _unlink(link: _Link) -> list[str | int]:
    out: list[str | int] = []
    while link is not None:
        key, link = link
        out.append(key)
    out.reverse()
    return out


def escape_text(text: str) -> str:
    """``text`` with every NUL and lone surrogate replaced by :data:`REPLACEMENT`."""
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(REPLACEMENT, text)


def escape_json(value: Any, *, max_depth: int = MAX_JSON_DEPTH, root: str = "") -> Any:
    """A copy of a JSON-like ``value`` with :func:`escape_text` applied to every string
    and key; values that need no change are returned as they are.

    Raises :class:`NestingTooDeep` for objects or arrays nested deeper than
    ``max_depth`` (so the walk's own recursion is bounded by it). Two keys of one
    object that differ only in unstorable characters become one (the later wins).
    """
    try:
        return _escape(value, 1, max_depth)
    except _TooDeep as exc:
        raise NestingTooDeep(path_text(root, reversed(exc.path)), max_depth) from None


class _TooDeep(Exception):
    def __init__(self) -> None:
        self.path: list[str | int] = []
        """Keys from the deepest level up (each frame on the way out adds its own)."""


def _escape(value: Any, depth: int, max_depth: int) -> Any:
    if isinstance(value, str):
        return escape_text(value)
    if not isinstance(value, dict | list | tuple):
        return value
    if depth > max_depth:
        raise _TooDeep
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        changed = False
        for k, v in value.items():
            try:
                nv = _escape(v, depth + 1, max_depth)
            except _TooDeep as exc:
                exc.path.append(k)
                raise
            nk = escape_text(k) if isinstance(k, str) else k
            changed = changed or nk is not k or nv is not v
            out[nk] = nv
        return out if changed else value
    items = []
    for i, v in enumerate(value):
        try:
            items.append(_escape(v, depth + 1, max_depth))
        except _TooDeep as exc:
            exc.path.append(i)
            raise
    if all(a is b for a, b in zip(items, value, strict=True)):
        return value
    return items if isinstance(value, list) else tuple(items)
