"""Files put before the model, read through the run's ports (A5 to A7).

:func:`resolve_attachments` turns ``inputs.attachments`` into the blocks of the first
user message (or the job's error, before any model call); :func:`file_read` is the
``file_read`` tool; :func:`reread` rebuilds a recorded ``file_read`` result when a
resumed run replays its conversation. What a file *is* and how it is shown is
:mod:`puras_runner.domain.agent.files`; here are only the reads.

Resolution is deterministic given the same inputs and the same files, so a resumed run
rebuilds the first user message by resolving the attachments again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from puras_common.events.types import ContentBlock, FileBlock, TextBlock
from puras_runner.app.ports import DriveFile, Fetcher, SandboxSession
from puras_runner.domain.agent.conversation import (
    Document,
    Image,
    ModelRoute,
    ResultBlock,
    Text,
)
from puras_runner.domain.agent.errors import FetchFailed
from puras_runner.domain.agent.files import (
    MAX_FILE_BYTES,
    AttachmentError,
    DriveEntry,
    FileRefused,
    InlineEntry,
    MediaType,
    NotForModel,
    Shown,
    ShownBlock,
    UrlEntry,
    check_size,
    drive_relative,
    entry_label,
    entry_subject,
    header,
    kind_of,
    media_type_of_name,
    parse_attachments,
    show_bytes,
    show_url,
    sniff,
)

__all__ = [
    "ATTACHMENT_FETCH_TIMEOUT_S",
    "MAX_READ_PATHS",
    "FileReadResult",
    "ResolvedAttachments",
    "file_read",
    "reread",
    "resolve_attachments",
]

ATTACHMENT_FETCH_TIMEOUT_S: Final = 60.0
"""How long a text URL's fetch may take (the docs' 60 s of an input URL)."""
MAX_READ_PATHS: Final = 10
"""Paths one ``file_read`` call may name (A5; its tool definition, the model's side of
this, is in :mod:`puras_runner.domain.agent.tools`)."""


@dataclass(frozen=True, slots=True)
class ResolvedAttachments:
    """``inputs.attachments`` as the first user message shows them."""

    blocks: tuple[ShownBlock, ...] = ()
    """Per attachment, in order: a header line, then its content (a text file's header
    and text are one block). Empty: no attachments."""
    refs: tuple[FileBlock, ...] = ()
    """The images and PDFs among them, by reference (drive path, URL or entry index)."""


@dataclass(frozen=True, slots=True)
class FileReadResult:
    """What one ``file_read`` call answers."""

    content: tuple[ResultBlock, ...]
    """What the model is shown: per path a header, then the file or an error line."""
    logged: tuple[ContentBlock, ...]
    """The same, as ``ToolResulted.content`` records it: text as text, images and PDFs
    by reference (their :class:`FileBlock`), in the same order."""
    refs: tuple[FileBlock, ...]
    """The images and PDFs shown, by drive path."""
    is_error: bool
    """True only when no file could be read (or the arguments were wrong)."""


async def resolve_attachments(
    raw: object,
    *,
    route: ModelRoute,
    fetcher: Fetcher,
    sandbox: Callable[[], Awaitable[SandboxSession]],
    fetch_timeout_s: float = ATTACHMENT_FETCH_TIMEOUT_S,
) -> ResolvedAttachments:
    """Resolve ``inputs.attachments`` (``raw``: its value, ``None`` when absent).

    Every entry's shape is checked before any file is read; drive files are read in one
    call through the sandbox, opened by ``sandbox()`` only when an entry needs it; image
    and PDF URLs go to the model as URLs, other URLs are fetched with ``fetcher``.
    Raises :class:`AttachmentError` whose ``str()`` is the job's error (a malformed
    entry, a file missing, too large or of a refused type, a kind the route's model
    cannot take). ``SandboxFailed`` from opening or using the sandbox propagates.
    """
    entries = parse_attachments(raw)
    if not entries:
        return ResolvedAttachments()
    drive = [e for e in entries if isinstance(e, DriveEntry)]
    files: dict[str, DriveFile] = {}
    if drive:
        session = await sandbox()
        asked = [e.drive_path for e in drive]
        files = _by_path(asked, await session.read_files(asked, max_bytes=MAX_FILE_BYTES))
    shown: list[Shown] = []
    for entry in entries:
        try:
            if isinstance(entry, DriveEntry):
                shown.append(_drive_attachment(entry, files.get(entry.drive_path), route))
            elif isinstance(entry, UrlEntry):
                shown.append(await _url_attachment(entry, route, fetcher, fetch_timeout_s))
            else:
                shown.append(_inline_attachment(entry, route))
        except NotForModel as e:
            raise AttachmentError(str(e)) from None
        except (FileRefused, FetchFailed) as e:
            raise AttachmentError(f"{entry_subject(entry)}: {e}") from None
    return ResolvedAttachments(
        blocks=tuple(b for s in shown for b in s.blocks),
        refs=tuple(s.ref for s in shown if s.ref is not None),
    )


def _by_path(asked: Sequence[str], read: Sequence[DriveFile]) -> dict[str, DriveFile]:
    """The files read, by the path asked for: the sandbox answers one file per path in
    order, and may spell a path its own way (normalized) in ``DriveFile.path``."""
    if len(read) == len(asked):
        return dict(zip(asked, read, strict=True))
    return {f.path: f for f in read}


def _drive_bytes(file: DriveFile | None) -> bytes:
    """A drive file's bytes; raises :class:`FileRefused` saying why there are none."""
    if file is not None and file.size > MAX_FILE_BYTES:
        check_size(file.size)
    if file is None or file.data is None:
        why = file.error if file is not None and file.error else "it could not be read"
        raise FileRefused(why)
    return file.data


def _drive_attachment(entry: DriveEntry, file: DriveFile | None, route: ModelRoute) -> Shown:
    data = _drive_bytes(file)
    media = entry.media_type or MediaType(sniff(data, name=entry.drive_path))
    return show_bytes(
        data,
        media,
        label=entry.drive_path,
        subject=entry_subject(entry),
        route=route,
        drive_path=entry.drive_path,
    )


def _inline_attachment(entry: InlineEntry, route: ModelRoute) -> Shown:
    media = entry.media_type
    if media is None:
        sniffed = sniff(entry.data)
        if sniffed == "application/octet-stream":
            raise FileRefused(
                "media_type is missing, and the bytes are not a recognizable image (jpeg, "
                'png, gif, webp), PDF or UTF-8 text; set media_type (such as "image/png")'
            )
        media = MediaType(sniffed)
    return show_bytes(
        entry.data,
        media,
        label=f"attachment {entry.index + 1}",
        subject=entry_subject(entry),
        route=route,
        base64_index=entry.index,
    )


async def _url_attachment(
    entry: UrlEntry, route: ModelRoute, fetcher: Fetcher, timeout_s: float
) -> Shown:
    subject = entry_subject(entry)
    path = urlsplit(entry.url).path
    said = entry.media_type.essence if entry.media_type else media_type_of_name(path)
    if said is not None and _passed_as_url(said):
        # A6: the provider fetches image and PDF URLs itself; the runner never does.
        return show_url(entry.url, said, subject=subject, route=route)
    if entry.media_type is not None:
        kind_of(entry.media_type.essence)  # an override of a refused type: no fetch for it
    fetched = await fetcher.get(entry.url, max_bytes=MAX_FILE_BYTES, timeout_s=timeout_s)
    if entry.media_type is not None:
        media = MediaType(entry.media_type.essence, entry.media_type.charset or fetched.charset)
    else:
        sniffed = sniff(fetched.data, name=urlsplit(fetched.url).path, declared=fetched.media_type)
        media = MediaType(sniffed, fetched.charset)
    if _passed_as_url(media.essence):
        return show_url(entry.url, media.essence, subject=subject, route=route)
    return show_bytes(fetched.data, media, label=entry_label(entry), subject=subject, route=route)


def _passed_as_url(media_type: str) -> bool:
    try:
        return kind_of(media_type) != "text"
    except FileRefused:
        return False


# -- file_read (A5) -------------------------------------------------------------------------


def _tool_error(message: str) -> FileReadResult:
    return FileReadResult(
        content=(Text(message),), logged=(TextBlock(text=message),), refs=(), is_error=True
    )


def _paths(args: object) -> list[str] | str:
    """The call's paths, or the tool error to answer with."""
    paths = args.get("paths") if isinstance(args, dict) else None
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        return 'file_read takes {"paths": ["uploads/photo.jpg", ...]}: a list of drive paths'
    if not 1 <= len(paths) <= MAX_READ_PATHS:
        return (
            f"file_read takes 1 to {MAX_READ_PATHS} paths a call, got {len(paths)}; "
            "split the files over several calls"
        )
    return paths


async def file_read(
    args: dict[str, Any], *, route: ModelRoute, sandbox: SandboxSession
) -> FileReadResult:
    """The ``file_read`` tool: ``args`` as the model gave them.

    Never raises for what the model asked (wrong arguments are a tool error; a missing,
    too large or refused file, or an image on a model without vision, is an error line
    in the result, the other files still come through); ``SandboxFailed`` propagates.
    """
    paths = _paths(args)
    if isinstance(paths, str):
        return _tool_error(paths)
    relative: list[str | FileRefused] = []
    for path in paths:
        try:
            relative.append(drive_relative(path))
        except FileRefused as e:
            relative.append(FileRefused(f"{path[:200]} {e}"))
    wanted = [p for p in relative if isinstance(p, str)]
    read = await sandbox.read_files(wanted, max_bytes=MAX_FILE_BYTES) if wanted else []
    files = _by_path(wanted, read)
    content: list[ResultBlock] = []
    logged: list[ContentBlock] = []
    refs: list[FileBlock] = []
    shown_any = False
    for asked, rel in zip(paths, relative, strict=True):
        if isinstance(rel, FileRefused):
            shown = Shown((Text(f"=== {asked[:200]} ===\nerror: {rel}"),), None)
        else:
            shown, ok = _read_one(rel, files.get(rel), route)
            shown_any = shown_any or ok
        content.extend(shown.blocks)
        logged.extend(_logged(shown))
        if shown.ref is not None:
            refs.append(shown.ref)
    return FileReadResult(tuple(content), tuple(logged), tuple(refs), is_error=not shown_any)


def _read_one(path: str, file: DriveFile | None, route: ModelRoute) -> tuple[Shown, bool]:
    """The file as shown, and whether it was (else an error line stands for it)."""
    try:
        data = _drive_bytes(file)
    except FileRefused as e:
        return Shown((Text(f"=== {path} ===\nerror: {e}"),), None), False
    media = MediaType(sniff(data, name=path))
    try:
        shown = show_bytes(
            data, media, label=path, subject=path, route=route, remedy=False, drive_path=path
        )
    except FileRefused as e:
        return Shown((Text(f"{header(path, media.essence, len(data))}\nerror: {e}"),), None), False
    return shown, True


def _logged(shown: Shown) -> list[ContentBlock]:
    out: list[ContentBlock] = []
    for block in shown.blocks:
        if isinstance(block, Text):
            out.append(TextBlock(text=block.text))
        elif shown.ref is not None:
            out.append(shown.ref)
    return out


async def reread(
    logged: Sequence[ContentBlock], *, sandbox: SandboxSession
) -> tuple[ResultBlock, ...]:
    """A recorded ``file_read`` result (``ToolResulted.content``) as the model was shown
    it, for a resumed run: the images and PDFs read again from the drive.

    A file that is gone or changed since (its sha256 differs) becomes a line saying so,
    rather than other bytes under the old record.
    """
    drive = [b.drive_path for b in logged if isinstance(b, FileBlock) and b.drive_path]
    read = await sandbox.read_files(drive, max_bytes=MAX_FILE_BYTES) if drive else []
    files = _by_path(drive, read)
    out: list[ResultBlock] = []
    for block in logged:
        if isinstance(block, TextBlock):
            out.append(Text(block.text))
        elif isinstance(block, FileBlock):
            out.append(_restored(block, files))
    return tuple(out)


def _restored(ref: FileBlock, files: dict[str, DriveFile]) -> ResultBlock:
    data: bytes | None = None
    if ref.drive_path is not None:
        file = files.get(ref.drive_path)
        data = file.data if file is not None else None
        if data is None or hashlib.sha256(data).hexdigest() != ref.sha256:
            return Text(
                f"[{ref.drive_path} was shown here; it has changed or is gone since, "
                "read it again with file_read to see it now]"
            )
    elif ref.url is None:
        return Text("[a file was shown here; it cannot be shown again]")
    if ref.kind == "image":
        return Image(ref.media_type, data=data, url=None if data is not None else ref.url)
    return Document(ref.media_type, data=data, url=None if data is not None else ref.url)
