"""The one normalizer of drive paths (SPEC D9), pure: every path a user, a skill or a tool
gives for a project's drive goes through :func:`normalize_path` (or its two narrower
forms) before anything touches storage.

It lives in the SDK, standard library only, so that skill code inside a job (reading
``./drive/``, naming a ``media.run`` output) and the services (the drive's storage
backends, through ``puras_common.drive_paths``) apply the very same rules: a path one
side accepts is never one the other refuses or reads differently.

A drive path is relative to the project's drive and uses ``/``. The rules:

* refused, with a :class:`DrivePathError` saying what to fix: a ``..`` segment, a
  leading ``/``, a backslash, NUL or another control character (Unicode ``Cc``, lone
  surrogates, line and paragraph separators), invalid percent-encoding where the caller
  says the path is percent-encoded, a path longer than :data:`MAX_PATH_BYTES` or a
  segment longer than :data:`MAX_SEGMENT_BYTES` (UTF-8 bytes);
* the same checks hold at every level of percent-decoding (``%2e%2e``, ``%252e%252e``,
  ``%2F``...): a later layer (a proxy, a signed URL, a shell) that decodes once more must
  not find a traversal there either; a path still changing after
  :data:`MAX_DECODE_LEVELS` decodings is refused rather than half-checked;
* empty segments and ``.`` segments are dropped (``a//b``, ``./a/./b`` are ``a/b``): a
  filesystem resolves them to the same file, so both storage backends must give them one
  key, and the canonical form is what is stored and listed;
* a trailing ``/`` means a folder: :func:`normalize_prefix` accepts it (the drive's root
  is ``""``), :func:`normalize_file_path` refuses it.

The canonical form has no leading or trailing ``/``, no empty, ``.`` or ``..`` segment,
and normalizing it again returns it unchanged.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

__all__ = [
    "MAX_DECODE_LEVELS",
    "MAX_PATH_BYTES",
    "MAX_SEGMENT_BYTES",
    "DrivePath",
    "DrivePathError",
    "normalize_file_path",
    "normalize_path",
    "normalize_prefix",
]

MAX_PATH_BYTES: Final = 900
"""Longest canonical path, in UTF-8 bytes: an S3 key holds 1,024 bytes and the drive's
key prefix (``drive/<project id>/``) takes up to 71 of them; the rest is headroom."""
MAX_SEGMENT_BYTES: Final = 255
"""Longest file or folder name, in UTF-8 bytes (NAME_MAX of common filesystems)."""
MAX_DECODE_LEVELS: Final = 4
"""Levels of percent-decoding looked through; a path nested deeper is refused."""

_EXAMPLE: Final = "give a path relative to the drive, such as uploads/photo.jpg"


class DrivePathError(ValueError):
    """A drive path that may not be used; ``str()`` names the path, what is wrong with
    it and what to give instead (an HTTP 400)."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"drive path {path!r} is refused: {problem}")


@dataclass(frozen=True, slots=True)
class DrivePath:
    """A normalized drive path."""

    path: str
    """Canonical, without a trailing ``/`` (``""``: the drive's root)."""
    folder: bool
    """The caller named a folder: a trailing ``/``, or the root."""

    @property
    def prefix(self) -> str:
        """The folder form: ``path`` plus ``/``, or ``""`` for the root."""
        return f"{self.path}/" if self.path else ""


def normalize_path(raw: str, *, percent_encoded: bool = False) -> DrivePath:
    """``raw`` as a canonical drive path, or :class:`DrivePathError`.

    ``percent_encoded``: ``raw`` comes straight from a URL that nobody decoded yet, so
    it is decoded once (strict UTF-8) first; otherwise it is taken literally (a file may
    be called ``100%.txt``), and only checked at every decoding level.
    """
    if not isinstance(raw, str):
        raise DrivePathError(repr(raw), f"a drive path is a string; {_EXAMPLE}")
    text = raw
    if percent_encoded:
        try:
            text = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise DrivePathError(
                raw, "its percent-encoding is not UTF-8; encode the path's UTF-8 bytes"
            ) from None
    _check_every_decoding(raw, text)
    folder = text.endswith("/") or not text
    segments = [s for s in text.split("/") if s not in ("", ".")]
    for segment in segments:
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise DrivePathError(
                raw,
                f"the name {segment[:40]!r}... is longer than {MAX_SEGMENT_BYTES} bytes; "
                "shorten it",
            )
    path = "/".join(segments)
    # Dropping segments can move an encoded "/" to the front ("./%2Fetc" is "%2Fetc"):
    # the canonical form is checked too, so what is returned passes again unchanged.
    _check_every_decoding(raw, path)
    if len(path.encode()) > MAX_PATH_BYTES:
        raise DrivePathError(
            raw[:80] + "...", f"it is longer than {MAX_PATH_BYTES} bytes; shorten it"
        )
    return DrivePath(path=path, folder=folder or not path)


def normalize_file_path(raw: str, *, percent_encoded: bool = False) -> str:
    """The canonical path of a file: as :func:`normalize_path`, and refused if it names
    a folder (empty, or ending in ``/``)."""
    got = normalize_path(raw, percent_encoded=percent_encoded)
    if got.folder:
        raise DrivePathError(
            raw,
            "it names a folder, not a file"
            + (" (it ends in /)" if got.path else " (it is empty)")
            + f"; {_EXAMPLE}",
        )
    return got.path


def normalize_prefix(raw: str, *, percent_encoded: bool = False) -> str:
    """A folder prefix in canonical form: ``""`` for the drive's root, else the folder's
    path plus ``/`` (``uploads`` and ``uploads/`` are both ``uploads/``)."""
    return normalize_path(raw, percent_encoded=percent_encoded).prefix


def _check_every_decoding(raw: str, text: str) -> None:
    form = text
    for _ in range(MAX_DECODE_LEVELS + 1):
        found = _problem(form)
        if found is not None:
            problem, remedy = found
            if form is not text:
                problem += " once percent-decoded"
            raise DrivePathError(raw, f"{problem}; {remedy}")
        decoded = unquote(form)
        if decoded == form:
            return
        form = decoded
    raise DrivePathError(
        raw,
        f"it is percent-encoded more than {MAX_DECODE_LEVELS} times over; send it decoded",
    )


def _problem(form: str) -> tuple[str, str] | None:
    """What makes one decoding level of a path unusable and what to do, or ``None``."""
    for char in form:
        if char == "\x00":
            return "it contains a NUL character", "remove it"
        if _is_control(char):
            return f"it contains the control character U+{ord(char):04X}", "remove it"
    if "\\" in form:
        return "it contains a backslash", "drive paths separate folders with /"
    if form.startswith("/"):
        return "it starts with /", _EXAMPLE
    if ".." in form.split("/"):
        return "it contains a '..' segment", f"that would leave its folder; {_EXAMPLE}"
    return None


def _is_control(char: str) -> bool:
    # Cc: C0, DEL and C1; Cs: lone surrogates (no UTF-8 form, so no file name); Zl/Zp
    # end a line in logs and listings as a newline would.
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp")
