"""What a project secret may be called and hold (X1).

A name is the env var a job sees, so it is an env-var name: ``^[A-Z_][A-Z0-9_]*$``.
Names the runner sets itself (``PURAS_*``, and the variables every process depends on)
are refused: a project secret called ``PATH`` or ``PURAS_JOB_TOKEN`` would silently
break or impersonate what the runner injects.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "MAX_NAME_CHARS",
    "MAX_VALUE_BYTES",
    "NAME_PATTERN",
    "RESERVED_NAMES",
    "name_problem",
    "value_problem",
]

NAME_PATTERN: Final = re.compile(r"^[A-Z_][A-Z0-9_]*$")
MAX_NAME_CHARS: Final = 128
"""Longer names are refused (an env var name is short; the name is a subject token)."""
MAX_VALUE_BYTES: Final = 64 * 1024
"""A secret's value is at most 64 KiB of UTF-8 (a PEM key or a service-account JSON
fits; a file does not, and belongs in the drive)."""
RESERVED_NAMES: Final = frozenset(
    {"PATH", "HOME", "PYTHONPATH", "VIRTUAL_ENV", "LANG", "LC_ALL", "TMPDIR", "PWD", "SHELL"}
)
_RESERVED_PREFIX: Final = "PURAS_"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a secret's name (what to change), or ``None``."""
    if not name:
        return "a secret needs a name"
    if len(name) > MAX_NAME_CHARS:
        return f"a secret name is at most {MAX_NAME_CHARS} characters"
    if not NAME_PATTERN.match(name):
        return (
            f"invalid secret name {name!r}: use upper-case letters, digits and underscores, "
            "not starting with a digit (^[A-Z_][A-Z0-9_]*$), e.g. "
            f"{_suggest(name)!r}"
        )
    if name in RESERVED_NAMES or name.startswith(_RESERVED_PREFIX):
        return (
            f"the name {name!r} is reserved for what the runner sets in every job "
            f"({_RESERVED_PREFIX}*, PATH, HOME, ...); choose another name"
        )
    return None


def value_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored (never quoting it), or ``None``."""
    if not value:
        return "`value` must be a non-empty string"
    if "\x00" in value:
        return "`value` cannot contain a NUL character (an env var cannot hold one)"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "`value` must be valid Unicode text (it holds a lone surrogate)"
    if size > MAX_VALUE_BYTES:
        return f"`value` is larger than {MAX_VALUE_BYTES // 1024} KiB"
    return None


def _suggest(name: str) -> str:
    out = re.sub(r"[^A-Z0-9_]", "_", name.upper())[:MAX_NAME_CHARS] or "MY_SECRET"
    return f"_{out}" if out[0].isdigit() else out
