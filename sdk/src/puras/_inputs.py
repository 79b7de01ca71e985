"""File inputs of a job in any of their shapes (SPEC S1).

A file reaches a skill as ``{"drive_path": ...}``, ``{"url": ...}``, ``{"data": ...}``
(a ``data:`` URL or raw base64; ``{"base64": ...}`` as in agent attachments is taken
too) or as a bare string: ``http(s)://...`` is a URL, ``data:...`` inline data,
anything else a path in the project drive. Other keys next to the source key (for
example ``media_type``, or the rest of an upload response) are ignored.

A drive path is checked and made canonical by the same normalizer the drive service
uses (:mod:`puras._drive_paths`, SPEC D9), then resolved under ``./drive/``: links
inside the drive are followed as long as they stay inside it.
"""

from __future__ import annotations

import base64
import binascii
import io
import mimetypes
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote_to_bytes, urlsplit

from puras._drive_paths import DrivePathError, normalize_file_path
from puras._errors import PurasError
from puras._fetch import fetch

__all__ = ["FileInput", "load_bytes", "load_path"]

FileInput = str | Mapping[str, Any]
"""What ``load_bytes`` / ``load_path`` accept."""

_Kind = Literal["drive", "url", "data"]
_SOURCE_KEYS = ("drive_path", "url", "data", "base64")
_SHAPES = (
    'a file input is {"drive_path": "uploads/a.jpg"}, {"url": "https://..."}, '
    '{"data": "data:image/png;base64,..."} or one of those as a plain string'
)
_OTHER_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_EXTENSION = re.compile(r"^\.[A-Za-z0-9]{1,10}$")
_DRIVE = "drive"


def load_bytes(source: FileInput) -> bytes:
    """The content of a file input, whatever its shape.

    A drive path is read from ``./drive/``; a URL is downloaded (http/https only, public
    addresses only, 50 MB, 60 s); data is decoded. Raises :class:`PurasError` saying
    what to fix.
    """
    kind, value = _classify(source)
    if kind == "drive":
        return _drive_file(value).read_bytes()
    if kind == "url":
        buf = io.BytesIO()
        fetch(value, buf)
        return buf.getvalue()
    return _decode_data(value)[1]


def load_path(source: FileInput, suffix: str | None = None) -> Path:
    """A local file holding a file input, whatever its shape.

    A drive path gives the file under ``./drive/`` itself (read in place; ``suffix`` is
    not used). A URL or data input is written to a new temporary file in the job's
    temp folder (``$TMPDIR``), named with ``suffix`` (``".jpg"``; a missing leading dot
    is added) or, without one, with the URL's or the data's media type's extension.
    Raises :class:`PurasError` saying what to fix.
    """
    kind, value = _classify(source)
    if kind == "drive":
        return _drive_file(value)
    wanted = _checked_suffix(suffix)
    if kind == "url":
        path = _new_temp_file(wanted if wanted is not None else _url_suffix(value))
        try:
            with path.open("wb") as out:
                fetch(value, out)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path
    media_type, data = _decode_data(value)
    path = _new_temp_file(wanted if wanted is not None else _media_type_suffix(media_type))
    try:
        path.write_bytes(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _classify(source: object) -> tuple[_Kind, str]:
    if isinstance(source, str):
        if not source:
            raise PurasError(f"the file input is an empty string; {_SHAPES}")
        head = source[:8].lower()
        if head.startswith(("http://", "https://")):
            return "url", source
        if head.startswith("data:"):
            return "data", source
        if _OTHER_SCHEME.match(source):
            raise PurasError(
                f"{source[:40]!r}... cannot be loaded: only http:// and https:// URLs are fetched"
            )
        return "drive", source
    if isinstance(source, Mapping):
        present = [k for k in _SOURCE_KEYS if source.get(k) is not None]
        if len(present) != 1:
            found = ", ".join(map(str, source)) or "none"
            raise PurasError(
                f"a file input object needs exactly one of drive_path, url or data "
                f"(keys given: {found}); {_SHAPES}"
            )
        key = present[0]
        value = source[key]
        if not isinstance(value, str) or not value:
            raise PurasError(f"{key} must be a non-empty string, not {type(value).__name__}")
        if key == "drive_path":
            return "drive", value
        if key == "url":
            return "url", value
        return "data", value
    raise PurasError(f"cannot load a {type(source).__name__}; {_SHAPES}")


def _drive_file(path: str) -> Path:
    # The services' own rules (D9), so a path the drive API stores is one a job reads.
    try:
        canonical = normalize_file_path(path)
    except DrivePathError as exc:
        raise PurasError(str(exc)) from None
    base = Path.cwd() / _DRIVE
    target = base / canonical
    try:
        real_base = base.resolve(strict=True)
        real = target.resolve()
    except FileNotFoundError:
        raise PurasError(
            "there is no ./drive/ folder in the working directory: drive paths are read "
            "inside a job (to try a skill locally, create ./drive/ and put files in it)"
        ) from None
    except (OSError, RuntimeError) as exc:  # a link loop
        raise PurasError(f"drive path {path!r} cannot be resolved: {exc}") from None
    # Links inside the drive are followed only as long as they stay inside it.
    if real != real_base and real_base not in real.parents:
        raise PurasError(f"drive path {path!r} is refused: it leads outside the drive")
    if not real.exists():
        raise PurasError(
            f"drive file {path!r} not found (looked for ./drive/{canonical}); upload it first "
            "(POST /v1/drive/upload) or check the path"
        )
    if not real.is_file():
        raise PurasError(f"drive path {path!r} is a folder, not a file")
    return target


def _decode_data(value: str) -> tuple[str | None, bytes]:
    """(media type or ``None``, bytes) of a ``data:`` URL or of raw base64."""
    if value[:5].lower() != "data:":
        return None, _b64decode(value)
    header, comma, payload = value[5:].partition(",")
    if not comma:
        raise PurasError("a data URL needs a comma before the data: data:<type>;base64,<data>")
    params = [p.strip() for p in header.split(";")]
    media_type = params[0].lower() or None
    if params[-1].lower() == "base64":
        return media_type, _b64decode(payload)
    # RFC 2397 without ;base64: the data is percent-encoded text.
    return media_type, unquote_to_bytes(payload)


def _b64decode(text: str) -> bytes:
    compact = "".join(text.split())  # line breaks inside base64 are common and harmless
    compact += "=" * (-len(compact) % 4)
    # The URL-safe alphabet (-, _) is accepted too; it cannot be mistaken for the other.
    altchars = b"-_" if ("-" in compact or "_" in compact) else None
    try:
        return base64.b64decode(compact, altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        raise PurasError(
            "data is neither a data: URL nor valid base64 "
            "(expected data:<type>;base64,<data> or the base64 text alone)"
        ) from None


def _checked_suffix(suffix: str | None) -> str | None:
    if suffix is None or suffix == "":
        return suffix
    if not isinstance(suffix, str) or any(c in suffix for c in "/\\\0"):
        raise PurasError(f"suffix must be a file extension such as '.jpg', not {suffix!r}")
    return suffix if suffix.startswith(".") else "." + suffix


def _url_suffix(url: str) -> str:
    ext = PurePosixPath(urlsplit(url).path).suffix
    return ext if _EXTENSION.match(ext) else ""


def _media_type_suffix(media_type: str | None) -> str:
    if not media_type:
        return ""
    return mimetypes.guess_extension(media_type, strict=False) or ""


def _new_temp_file(suffix: str) -> Path:
    # TMPDIR is read on every call instead of tempfile.gettempdir(), which caches the
    # first answer for the life of the process: a runner's warm template process forks
    # jobs that each have their own temp folder inside their workdir (R2).
    fd, name = tempfile.mkstemp(
        prefix="puras-", suffix=suffix, dir=os.environ.get("TMPDIR") or None
    )
    os.close(fd)
    return Path(name)
