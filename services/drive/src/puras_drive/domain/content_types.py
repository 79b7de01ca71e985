"""The content type of a drive file, from its first bytes and its name (pure).

Both backends sniff the same way from the same :data:`SNIFF_BYTES`, so ``put`` and
``stat`` agree whichever stores the file: magic numbers first (the bytes are the truth),
then the name's extension, then UTF-8 text, then ``application/octet-stream``.
"""

from __future__ import annotations

import codecs
import mimetypes
from functools import cache
from typing import Final

__all__ = ["SNIFF_BYTES", "sniff_content_type"]

SNIFF_BYTES: Final = 512
"""How much of a file's start is looked at."""

_MAGIC: Final[tuple[tuple[int, bytes, str], ...]] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"OggS", "audio/ogg"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (4, b"ftypqt", "video/quicktime"),
)
_RIFF: Final = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
_FTYP_AUDIO: Final = (b"M4A ", b"M4B ")


@cache
def _table() -> mimetypes.MimeTypes:
    # Python's own table only: the host's /etc/mime.types would make the answer depend
    # on the machine the drive runs on.
    return mimetypes.MimeTypes(filenames=())


def sniff_content_type(head: bytes, name: str) -> str:
    """The type of a file that starts with ``head`` (its first :data:`SNIFF_BYTES`, or
    all of it) and is called ``name``."""
    for offset, magic, media_type in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return media_type
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if head[4:8] == b"ftyp":
        return "audio/mp4" if head[8:12] in _FTYP_AUDIO else "video/mp4"
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    guessed, _ = _table().guess_type(name, strict=False)
    if guessed:
        return guessed
    if _is_text(head):
        return "text/plain"
    return "application/octet-stream"


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        # Not final: the head may end in the middle of a character.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True
