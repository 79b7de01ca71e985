"""Files put before the model: what a file is, whether the model may see it, and how.

Both routes of A5 to A7 end here — ``inputs.attachments`` and the ``file_read`` tool — so
the two show a file the same way: a text file inlined (up to :data:`MAX_TEXT_CHARS`),
an image as a vision block, a PDF as a document block, anything else refused with a
message naming what to do. Pure: the bytes come in, blocks come out; reading the drive
and fetching URLs is the resolver's job (:mod:`puras_runner.app.agent_files`).
"""

from __future__ import annotations

import binascii
import codecs
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from typing import Final, Literal, TypeAlias
from urllib.parse import urlsplit

from puras_common.drive_paths import DrivePathError, normalize_file_path
from puras_common.events.types import FileBlock
from puras_runner.domain.agent.conversation import Document, Image, ModelRoute, Text

__all__ = [
    "DOCUMENT_TYPES",
    "IMAGE_TYPES",
    "MAX_FILE_BYTES",
    "MAX_TEXT_CHARS",
    "AttachmentError",
    "DriveEntry",
    "Entry",
    "FileKind",
    "FileRefused",
    "InlineEntry",
    "MediaType",
    "NotForModel",
    "Shown",
    "ShownBlock",
    "UrlEntry",
    "check_size",
    "drive_relative",
    "entry_label",
    "entry_subject",
    "format_size",
    "header",
    "inline_text",
    "kind_of",
    "media_type_of_name",
    "parse_attachments",
    "parse_entry",
    "parse_media_type",
    "refusal_for_route",
    "show_bytes",
    "show_url",
    "sniff",
    "url_label",
]

MAX_FILE_BYTES: Final = 5 * 1024 * 1024
"""The cap of one attachment or one ``file_read`` file (A5, A6)."""
MAX_TEXT_CHARS: Final = 100_000
"""Characters of a text file inlined before it is truncated (A5, A6)."""

IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
"""What every provider's vision blocks take."""
DOCUMENT_TYPES: Final = frozenset({"application/pdf"})
"""What document blocks take (Anthropic only)."""
_TEXT_APPLICATION_TYPES: Final = frozenset(
    {
        "application/json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        # Textual by definition, and common enough in a drive to be worth inlining.
        "application/toml",
        "application/javascript",
        "application/ndjson",
        "application/x-ndjson",
        "application/sql",
    }
)
_TEXT_SUFFIXES: Final = ("+json", "+xml", "+yaml")
_GENERIC_TYPES: Final = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}
)
"""Types that say nothing about the bytes (a server's default, an unknown extension)."""
_ALIASES: Final = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_SUPPORTED_HINT: Final = "attach images (jpeg, png, gif, webp), PDFs or text files"

FileKind: TypeAlias = Literal["image", "document", "text"]
ShownBlock: TypeAlias = Text | Image | Document
"""What a file becomes in a user message or a tool result."""


class FileRefused(Exception):
    """One file cannot be shown to the model; ``str()`` says why and what to do, without
    naming the file (the caller prefixes ``attachment 2 (uploads/a.zip): `` or a path)."""


class NotForModel(FileRefused):
    """The file is fine, but the run's model cannot take its kind (A5, A7); ``str()`` is
    a whole sentence that names the file and the model."""


class AttachmentError(Exception):
    """An ``inputs.attachments`` entry is malformed or cannot be shown to the run's model.

    ``str()`` is the job's error (it fails before any model call, A7): it names the
    attachment and what to fix.
    """


@dataclass(frozen=True, slots=True)
class MediaType:
    """A MIME type without its parameters, and the charset parameter if it had one."""

    essence: str
    charset: str | None = None


def parse_media_type(value: str) -> MediaType:
    """``"Text/Plain; charset=latin-1"`` → ``MediaType("text/plain", "latin-1")``;
    raises :class:`FileRefused` on something that is not a MIME type."""
    essence, _, params = value.partition(";")
    essence = essence.strip().lower()
    kind, slash, sub = essence.partition("/")
    if not slash or not kind or not sub or " " in essence:
        raise FileRefused(
            f"media_type {value!r} is not a MIME type such as image/png or text/plain"
        )
    charset = None
    for param in params.split(";"):
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip('"')
    return MediaType(_ALIASES.get(essence, essence), charset)


# Signatures of the types the model can take (and of archives, to name them when
# refused). Magic numbers beat names and servers' Content-Types, which are often wrong.
_MAGIC: Final = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
)
_ARCHIVE_MAGIC: Final = (
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
)
_EXTENSIONS: Final = {
    # Python 3.11's mimetypes lacks some of these (webp, md, yaml) and its answers vary
    # with the machine's /etc/mime.types; the ones that decide a kind are pinned here.
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpe": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "pdf": "application/pdf",
    "txt": "text/plain",
    "text": "text/plain",
    "log": "text/plain",
    "md": "text/markdown",
    "markdown": "text/markdown",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "html": "text/html",
    "htm": "text/html",
    "css": "text/css",
    "js": "text/javascript",
    "mjs": "text/javascript",
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "ndjson": "application/x-ndjson",
    "xml": "application/xml",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "toml": "application/toml",
    "py": "text/x-python",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "heic": "image/heic",
    "avif": "image/avif",
}


@cache
def _stdlib_types() -> mimetypes.MimeTypes:
    # The stdlib's built-in table only (not the machine's files), built on first use.
    return mimetypes.MimeTypes(filenames=())


def media_type_of_name(name: str) -> str | None:
    """The type a file name's extension says (``None``: it says nothing)."""
    base = name.rsplit("/", 1)[-1]
    if "." not in base:
        return None
    ext = base.rsplit(".", 1)[-1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    guessed, encoding = _stdlib_types().guess_type(base, strict=False)
    if encoding is not None:  # ``a.txt.gz`` is a gzip file, not text
        return {"gzip": "application/gzip", "bzip2": "application/x-bzip2"}.get(
            encoding, "application/octet-stream"
        )
    return guessed


def _magic(data: bytes) -> str | None:
    for offset, signature, media_type in _MAGIC:
        if data[offset : offset + len(signature)] == signature:
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    # The PDF header may follow some junk; readers look in the first KB.
    if b"%PDF-" in data[:1024]:
        return "application/pdf"
    return None


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _plausible(claimed: str | None) -> str | None:
    """A claimed type worth believing once the magic numbers said nothing: not generic,
    and not an image or a PDF (the bytes do not start like one, and a provider rejects
    a "PNG" that is not one with a less clear error than ours)."""
    if claimed is None or claimed in _GENERIC_TYPES:
        return None
    if claimed in IMAGE_TYPES or claimed in DOCUMENT_TYPES:
        return None
    return claimed


def sniff(data: bytes, *, name: str | None = None, declared: str | None = None) -> str:
    """The type of ``data``: its magic number, else the server's ``declared``
    Content-Type, else the ``name``'s extension, else ``text/plain`` if it is UTF-8
    text, else ``application/octet-stream``. (An explicit ``media_type`` override is
    the caller's and wins over all of this, A6.)"""
    confirmed = _magic(data)
    if confirmed is not None:
        return confirmed
    declared_type = None
    if declared:
        try:
            declared_type = parse_media_type(declared).essence
        except FileRefused:  # a server's malformed Content-Type says nothing
            declared_type = None
    for claimed in (declared_type, media_type_of_name(name) if name else None):
        plausible = _plausible(claimed)
        if plausible is not None:
            return plausible
    if _is_text(data):
        return "text/plain"
    for signature, media_type in _ARCHIVE_MAGIC:
        if data.startswith(signature):
            return media_type
    return "application/octet-stream"


def kind_of(media_type: str) -> FileKind:
    """How the model is shown a type; raises :class:`FileRefused` for any other type."""
    if media_type in IMAGE_TYPES:
        return "image"
    if media_type in DOCUMENT_TYPES:
        return "document"
    if (
        media_type.startswith("text/")
        or media_type in _TEXT_APPLICATION_TYPES
        or media_type.endswith(_TEXT_SUFFIXES)
    ):
        return "text"
    if media_type in _GENERIC_TYPES:
        raise FileRefused(
            "its type could not be recognized (its bytes are not an image, a PDF or UTF-8 "
            f"text); {_SUPPORTED_HINT}, or set media_type"
        )
    raise FileRefused(f"{media_type} is not supported; {_SUPPORTED_HINT}")


def format_size(size: int) -> str:
    """``234.1KB``, ``1.2MB``, ``512B`` (binary units, as the docs show them)."""
    if size < 1024:
        return f"{size}B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f}KB"
    return f"{size / (1024 * 1024):.1f}MB"


def check_size(size: int) -> None:
    """Raises :class:`FileRefused` for a file over :data:`MAX_FILE_BYTES`."""
    if size > MAX_FILE_BYTES:
        raise FileRefused(
            f"it is {format_size(size)} ({size:,} bytes), over the 5 MB cap a file; "
            "attach a smaller file (or let the skill read it with bash from the drive)"
        )


def inline_text(data: bytes, charset: str | None = None) -> str:
    """The text of a file: decoded as ``charset`` (UTF-8 when none or unknown), bad
    bytes replaced, cut at :data:`MAX_TEXT_CHARS` with a line saying so."""
    encoding = "utf-8"
    if charset:
        try:
            encoding = codecs.lookup(charset).name
        except LookupError:
            encoding = "utf-8"
    text = data.decode(encoding, errors="replace")
    if len(text) <= MAX_TEXT_CHARS:
        return text
    return (
        text[:MAX_TEXT_CHARS] + f"\n[truncated: the file has {len(text):,} characters; the first "
        f"{MAX_TEXT_CHARS:,} are shown]"
    )


def header(label: str, media_type: str, size: int | None) -> str:
    """``=== uploads/photo.jpg (image/jpeg, 234.1KB) ===`` (``size`` ``None``: a URL)."""
    what = media_type if size is None else f"{media_type}, {format_size(size)}"
    return f"=== {label} ({what}) ==="


def url_label(url: str) -> str:
    """A URL as messages name it: without its query or fragment, which may hold a
    signed URL's token."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url[:200]
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def refusal_for_route(
    kind: FileKind, route: ModelRoute, *, subject: str, remedy: bool = True
) -> str | None:
    """Why the route's model cannot take a file of ``kind`` (``None``: it can); the
    sentence starts with ``subject`` (``attachment 1 (spec.pdf)``, a drive path) and,
    with ``remedy``, says what works instead (the skill's author can act on it; the
    model in the middle of a run cannot)."""
    if kind == "image" and not route.vision:
        said = f"{subject} is an image, and {route.slug} takes no images (it has no vision)"
        fix = "use a model with vision, such as a claude/* model, or describe the image in text"
    elif kind == "document" and not route.pdf:
        said = (
            f"{subject} is a PDF, and {route.slug} takes no PDF attachments "
            "(the claude/* models do)"
        )
        fix = "convert its pages to images, or use a claude model"
    else:
        return None
    return f"{said}; {fix}" if remedy else f"{said}; skipped"


def drive_relative(path: str) -> str:
    """A drive path as the sandbox reads it: a leading ``drive/`` (or ``./drive/``)
    stripped, then canonical by the one normalizer (D9); raises :class:`FileRefused` for
    what is not a drive path."""
    if "://" in path:
        raise FileRefused(
            "is a URL, not a drive path; call download_url to save it into the drive first"
        )
    rel = path.strip()
    while rel.startswith("./"):
        rel = rel[2:]
    if rel.startswith("drive/"):
        rel = rel[len("drive/") :]
    if not rel or rel.endswith("/"):
        raise FileRefused("is not a file path in the drive (such as uploads/photo.jpg)")
    try:
        return normalize_file_path(rel)
    except DrivePathError as exc:
        raise FileRefused(f"is refused: {exc.problem}") from None


@dataclass(frozen=True, slots=True)
class Shown:
    """A file as the model sees it, and how the log records it."""

    blocks: tuple[ShownBlock, ...]
    """A header line, then the content (a text file's header and text are one block)."""
    ref: FileBlock | None
    """The log's by-reference record of an image or a PDF (``None``: a text file)."""


def show_bytes(
    data: bytes,
    media: MediaType,
    *,
    label: str,
    subject: str,
    route: ModelRoute,
    remedy: bool = True,
    drive_path: str | None = None,
    base64_index: int | None = None,
) -> Shown:
    """``data`` of type ``media`` as blocks for ``route``'s model.

    Raises :class:`FileRefused` for its size or type (the caller names the file) and
    :class:`NotForModel` when the model cannot take it (the sentence names ``subject``).
    ``drive_path`` / ``base64_index`` say where the log's reference points.
    """
    check_size(len(data))
    kind = kind_of(media.essence)
    top = header(label, media.essence, len(data))
    if kind == "text":
        return Shown((Text(f"{top}\n{inline_text(data, media.charset)}"),), None)
    refusal = refusal_for_route(kind, route, subject=subject, remedy=remedy)
    if refusal is not None:
        raise NotForModel(refusal)
    block: ShownBlock = (
        Image(media.essence, data=data) if kind == "image" else Document(media.essence, data=data)
    )
    ref = FileBlock(
        kind=kind,
        media_type=media.essence,
        drive_path=drive_path,
        base64_index=base64_index,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    return Shown((Text(top), block), ref)


def show_url(url: str, media_type: str, *, subject: str, route: ModelRoute) -> Shown:
    """An image or PDF the provider fetches itself (A6: not downloaded by the runner).

    Raises :class:`NotForModel` when the route's model cannot take it.
    """
    kind = kind_of(media_type)
    if kind == "text":
        raise ValueError("text URLs are fetched and inlined, not passed as URLs")
    refusal = refusal_for_route(kind, route, subject=subject)
    if refusal is not None:
        raise NotForModel(refusal)
    block: ShownBlock = (
        Image(media_type, url=url) if kind == "image" else Document(media_type, url=url)
    )
    ref = FileBlock(kind=kind, media_type=media_type, url=url)
    return Shown((Text(header(url_label(url), media_type, None)), block), ref)


# -- inputs.attachments entries (A6) -------------------------------------------------------

_SHAPES: Final = (
    '{"drive_path": "uploads/a.jpg"}, {"url": "https://..."} or '
    '{"base64": "...", "media_type": "image/png"} (media_type is optional on the first two)'
)
_SOURCES: Final = ("drive_path", "url", "base64")


@dataclass(frozen=True, slots=True)
class DriveEntry:
    """``{drive_path}``: a file of the project's drive."""

    index: int
    """0-based position in ``inputs.attachments``."""
    drive_path: str
    """``drive/`` stripped."""
    media_type: MediaType | None = None


@dataclass(frozen=True, slots=True)
class UrlEntry:
    """``{url}``: an http(s) URL."""

    index: int
    url: str
    media_type: MediaType | None = None


@dataclass(frozen=True, slots=True)
class InlineEntry:
    """``{base64, media_type}``: the bytes in the job's inputs."""

    index: int
    data: bytes
    media_type: MediaType | None = None


Entry: TypeAlias = DriveEntry | UrlEntry | InlineEntry


def entry_label(entry: Entry) -> str:
    """How messages and headers name an entry's file."""
    if isinstance(entry, DriveEntry):
        return entry.drive_path
    if isinstance(entry, UrlEntry):
        return url_label(entry.url)
    return "base64"


def entry_subject(entry: Entry) -> str:
    """``attachment 2 (uploads/a.zip)``: 1-based, as a person counts a JSON list."""
    return f"attachment {entry.index + 1} ({entry_label(entry)})"


def _decode_base64(text: str) -> tuple[bytes, str | None]:
    """The bytes of raw base64 (or of a ``data:`` URL, whose type it also returns)."""
    declared = None
    if text.startswith("data:"):
        head, comma, text = text.partition(",")
        if not comma or not head.endswith(";base64"):
            raise FileRefused('a data: URL must look like "data:image/png;base64,...."')
        declared = head[len("data:") : -len(";base64")] or None
    compact = "".join(text.split())
    # Refuse before decoding: 4 characters of base64 hold 3 bytes.
    check_size(len(compact) * 3 // 4 - compact[-2:].count("="))
    try:
        return binascii.a2b_base64(compact, strict_mode=True), declared
    except (binascii.Error, ValueError) as e:
        raise FileRefused(
            f"base64 is not valid ({e}); send the file's bytes as standard base64, "
            "without a data: prefix or line breaks inside a character group"
        ) from None


def parse_entry(index: int, raw: object) -> Entry:
    """One ``inputs.attachments`` entry; raises :class:`AttachmentError` naming it."""
    where = f"attachment {index + 1}"
    if not isinstance(raw, dict):
        raise AttachmentError(f"{where} is a {type(raw).__name__}; expected an object: {_SHAPES}")
    keys = set(raw)
    sources = [k for k in _SOURCES if k in keys]
    unknown = sorted(str(k) for k in keys - {*_SOURCES, "media_type"})
    if len(sources) != 1 or unknown:
        got = ", ".join(sorted(str(k) for k in keys)) or "no keys"
        raise AttachmentError(f"{where} has {got}; expected exactly one of {_SHAPES}")
    source = sources[0]
    value = raw[source]
    if not isinstance(value, str) or not value.strip():
        raise AttachmentError(f"{where}: {source} must be a non-empty string")
    media: MediaType | None = None
    if "media_type" in raw:
        override = raw["media_type"]
        if not isinstance(override, str):
            raise AttachmentError(f"{where}: media_type must be a string such as image/png")
        try:
            media = parse_media_type(override)
        except FileRefused as e:
            raise AttachmentError(f"{where}: {e}") from None
    if source == "drive_path":
        try:
            return DriveEntry(index, drive_relative(value), media)
        except FileRefused as e:
            raise AttachmentError(f"{where} ({value[:200]}) {e}") from None
    if source == "url":
        scheme = urlsplit(value).scheme.lower()
        if scheme not in ("http", "https"):
            raise AttachmentError(
                f"{where} ({url_label(value)}): only http and https URLs can be attached"
            )
        return UrlEntry(index, value.strip(), media)
    try:
        data, declared = _decode_base64(value.strip())
    except FileRefused as e:
        raise AttachmentError(f"{where} (base64): {e}") from None
    if media is None and declared:
        try:
            media = parse_media_type(declared)
        except FileRefused as e:
            raise AttachmentError(f"{where} (base64): {e}") from None
    return InlineEntry(index, data, media)


def parse_attachments(raw: object) -> list[Entry]:
    """``inputs.attachments`` (``None``: absent) as entries, every shape checked before
    any file is read; raises :class:`AttachmentError`."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise AttachmentError(
            f"inputs.attachments is a {type(raw).__name__}; expected a list of {_SHAPES}"
        )
    return [parse_entry(i, item) for i, item in enumerate(raw)]
