"""Deployment zips as archives: safe reading and safe extraction.

What a bundle may contain is decided here, once, for both sides: the gateway validating
a push and the runner extracting a deployment read a zip through :func:`open_bundle`, so
the two can never disagree about which files a bundle holds or where they land. (The
clients pack a project folder with ``puras_bundle``, which needs no server library.)

Refused: archives over the size limits or with members that decompress far beyond their
compressed size (zip bombs); member names with ``..`` or empty segments, absolute paths,
drive letters, backslashes, NUL or other control characters; symbolic links and other
special files; encrypted members; a name that appears twice or is both a file and a
folder. A single top-level folder wrapping everything (``zip -r my-project.zip
my-project``) is taken as the root.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import stat
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

__all__ = [
    "BUNDLE_FILE",
    "READ_ERRORS",
    "BundleArchive",
    "BundleInvalid",
    "BundleLimits",
    "Entry",
    "Problem",
    "extract_bundle",
    "open_bundle",
    "unreadable",
]

MiB: Final = 1024 * 1024

BUNDLE_FILE: Final = "<bundle>"
"""``Problem.file`` of a problem with the archive as a whole."""

SKILL_YAML: Final = re.compile(r"^skills/[^/]+/skill\.yaml$")

_CHUNK: Final = 1024 * 1024
_MAX_SEGMENT_BYTES: Final = 255  # NAME_MAX of every filesystem a runner would use
_SUPPORTED_COMPRESSION: Final = frozenset(
    {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
)
# Finder's "Compress" adds resource-fork shadows under __MACOSX/ next to the folder the
# user zipped; they are never part of the project, so they are skipped, not refused.
_MACOS_JUNK: Final = "__MACOSX"
READ_ERRORS: Final = (  # what reading a corrupt member can raise
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    OSError,
    ValueError,
)


@dataclass(frozen=True)
class BundleLimits:
    """Size limits of a deployment zip; every one is checked before anything is written."""

    max_zip_bytes: int = 50 * MiB
    """Size of the zip itself."""
    max_total_bytes: int = 200 * MiB
    """Sum of the uncompressed sizes of all members."""
    max_files: int = 5000
    """Number of members (files and folders)."""
    max_file_bytes: int = 100 * MiB
    """Uncompressed size of one member."""
    max_compression_ratio: int = 200
    """Largest uncompressed:compressed ratio of one member (zip bombs reach ~1000:1)."""
    ratio_check_min_bytes: int = 1 * MiB
    """Members smaller than this skip the ratio check: a small file of repeated bytes
    compresses far beyond any ratio, and at that size it is harmless."""


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with a bundle, named by file and field."""

    file: str
    """Path inside the bundle (``skills/echo/skill.yaml``), or ``<bundle>`` for the zip."""
    field: str | None
    """Field inside that file (``entrypoint``, ``input_schema.properties.x``), if any."""
    message: str
    """What is wrong and what to do about it."""

    def __str__(self) -> str:
        if self.field:
            return f"{self.file}: {self.field}: {self.message}"
        return f"{self.file}: {self.message}"


class BundleInvalid(ValueError):
    """A bundle (or a project folder to pack) was refused; ``problems`` says why.

    ``str()`` lists every problem, one per line, as ``file: field: message``.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True, slots=True)
class Entry:
    """One member of a bundle, under its path relative to the bundle root."""

    info: zipfile.ZipInfo
    path: str
    """Normalised ``/``-separated path with any wrapping folder removed, no trailing ``/``."""
    is_dir: bool
    executable: bool
    """Whether the member carried an exec bit (kept on extraction, nothing else is)."""


class BundleArchive:
    """An opened zip whose member names and sizes passed every safety check.

    Built by :func:`open_bundle`; member contents are read on demand, in chunks, never
    beyond the declared (and checked) sizes.
    """

    def __init__(self, zf: zipfile.ZipFile, entries: list[Entry]) -> None:
        self._zf = zf
        self.entries = entries
        """Every member, folders included, in archive order."""
        self.files: dict[str, Entry] = {e.path: e for e in entries if not e.is_dir}
        """The file members by path."""
        self.dirs: frozenset[str] = frozenset(_all_dirs(entries))
        """Every folder path, whether it has its own member or only holds files."""

    @property
    def uncompressed_bytes(self) -> int:
        """Sum of the files' uncompressed sizes."""
        return sum(e.info.file_size for e in self.files.values())

    def iter_chunks(self, path: str) -> Iterator[bytes]:
        """The content of file ``path`` in chunks; raises the zip's read errors."""
        with self._zf.open(self.files[path].info) as src:
            while chunk := src.read(_CHUNK):
                yield chunk

    def read(self, path: str) -> bytes:
        """The whole content of file ``path``; raises the zip's read errors."""
        return b"".join(self.iter_chunks(path))

    def close(self) -> None:
        """Releases the underlying zip."""
        self._zf.close()


def unreadable(path: str, exc: BaseException) -> Problem:
    """The Problem of a member whose content cannot be read back (corrupt archive)."""
    return Problem(path, None, f"cannot be read from the zip ({exc}); re-create the bundle")


def open_bundle(data: bytes, limits: BundleLimits = BundleLimits()) -> BundleArchive:
    """Opens ``data`` as a bundle; :class:`BundleInvalid` lists every unsafe member.

    Checks sizes (as declared in the archive, which reading never exceeds), names and
    member types; it does not read member contents.
    """
    if len(data) > limits.max_zip_bytes:
        raise BundleInvalid(
            [
                Problem(
                    BUNDLE_FILE,
                    None,
                    f"the zip is {_size(len(data))}; the limit is {_size(limits.max_zip_bytes)}",
                )
            ]
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except READ_ERRORS as exc:
        raise BundleInvalid(
            [Problem(BUNDLE_FILE, None, f"not a zip archive ({exc}); upload a .zip file")]
        ) from None
    try:
        entries = _checked_entries(zf, limits)
    except BundleInvalid:
        zf.close()
        raise
    return BundleArchive(zf, entries)


def extract_bundle(
    data: bytes,
    dest: Path,
    limits: BundleLimits = BundleLimits(),
) -> None:
    """Extracts a bundle to the folder ``dest``, which must not exist yet.

    Applies :func:`open_bundle`'s checks and strips a wrapping folder the same way.
    Everything is written under a fresh sibling ``<dest>.tmp-<random>`` and renamed to
    ``dest`` at the end, so ``dest`` either is complete or does not exist. Files are
    created new (never through an existing link; no link is ever created), mode 0644, or
    0755 for members that carried an exec bit. Raises :class:`BundleInvalid` for an
    unsafe or corrupt bundle and :class:`FileExistsError` if ``dest`` exists (also when
    a concurrent extraction to the same ``dest`` finished first).
    """
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise FileExistsError(f"{dest} already exists")
    archive = open_bundle(data, limits)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp-{secrets.token_hex(8)}")
    try:
        os.mkdir(tmp, 0o755)
        for entry in archive.entries:
            target = tmp.joinpath(*entry.path.split("/"))
            if entry.is_dir:
                target.mkdir(mode=0o755, parents=True, exist_ok=True)
                continue
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            _write_new(target, archive, entry)
        try:
            os.rename(tmp, dest)
        except OSError as exc:
            if dest.exists():
                raise FileExistsError(f"{dest} already exists") from exc
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        archive.close()


def _checked_entries(zf: zipfile.ZipFile, limits: BundleLimits) -> list[Entry]:
    infos = zf.infolist()
    if len(infos) > limits.max_files:
        raise BundleInvalid(
            [
                Problem(
                    BUNDLE_FILE,
                    None,
                    f"the zip has {len(infos)} members; the limit is {limits.max_files}",
                )
            ]
        )
    problems: list[Problem] = []
    raw: list[tuple[zipfile.ZipInfo, list[str], bool]] = []
    total = 0
    for info in infos:
        # zipfile cuts a name at its first NUL; the original name shows what was sent.
        name = info.orig_filename
        shown = _display(name)
        segments, problem = _segments(name)
        if problem is not None:
            problems.append(Problem(shown, None, problem))
            continue
        if not segments or segments[0] == _MACOS_JUNK:
            continue
        ftype = stat.S_IFMT(info.external_attr >> 16)
        if ftype == stat.S_IFLNK:
            problems.append(Problem(shown, None, "symbolic links are not allowed in a bundle"))
            continue
        if ftype not in (0, stat.S_IFREG, stat.S_IFDIR):
            problems.append(Problem(shown, None, "special files are not allowed in a bundle"))
            continue
        is_dir = name.endswith("/")
        if info.flag_bits & 0x1:
            problems.append(Problem(shown, None, "encrypted members are not supported"))
            continue
        if not is_dir and info.compress_type not in _SUPPORTED_COMPRESSION:
            problems.append(
                Problem(
                    shown,
                    None,
                    f"compression method {info.compress_type} is not supported; "
                    "use deflate (the default of every zip tool)",
                )
            )
            continue
        if info.file_size > limits.max_file_bytes:
            problems.append(
                Problem(
                    shown,
                    None,
                    f"is {_size(info.file_size)} uncompressed; "
                    f"the limit for one file is {_size(limits.max_file_bytes)}",
                )
            )
            continue
        if (
            info.file_size >= limits.ratio_check_min_bytes
            and info.file_size > limits.max_compression_ratio * max(info.compress_size, 1)
        ):
            problems.append(
                Problem(
                    shown,
                    None,
                    f"compresses {info.file_size // max(info.compress_size, 1)}:1, beyond "
                    f"the {limits.max_compression_ratio}:1 limit (a zip bomb?)",
                )
            )
            continue
        total += info.file_size
        raw.append((info, segments, is_dir))
    if total > limits.max_total_bytes:
        problems.append(
            Problem(
                BUNDLE_FILE,
                None,
                f"the files add up to {_size(total)} uncompressed; "
                f"the limit is {_size(limits.max_total_bytes)}",
            )
        )
    if problems:
        raise BundleInvalid(problems)
    return _rooted(raw)


def _segments(name: str) -> tuple[list[str], str | None]:
    """The path segments of a member name (``.`` dropped), or why the name is refused."""
    if "\\" in name:
        return [], "backslashes are not allowed in member names (zip paths use /)"
    if any(_is_control(c) for c in name):
        return [], "control characters (NUL, newline, ...) are not allowed in member names"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return [], "absolute paths are not allowed in a bundle"
    parts = name.rstrip("/").split("/") if name.rstrip("/") else []
    segments: list[str] = []
    for part in parts:
        if part == "..":
            return [], "'..' segments are not allowed in a bundle"
        if part == "":
            return [], "empty path segments ('//') are not allowed in a bundle"
        if len(part.encode("utf-8", "surrogateescape")) > _MAX_SEGMENT_BYTES:
            return [], f"a path segment is longer than {_MAX_SEGMENT_BYTES} bytes"
        if part != ".":
            segments.append(part)
    return segments, None


def _rooted(raw: list[tuple[zipfile.ZipInfo, list[str], bool]]) -> list[Entry]:
    """Entries under the bundle root: strips a single wrapping folder, checks clashes."""
    has_skill_at_root = any(
        not is_dir and SKILL_YAML.match("/".join(segs)) for _, segs, is_dir in raw
    )
    tops = {segs[0] for _, segs, _ in raw}
    file_tops = {segs[0] for _, segs, is_dir in raw if len(segs) == 1 and not is_dir}
    # A lone top-level "skills" folder is the skills folder itself, never a wrapper.
    strip = not has_skill_at_root and len(tops) == 1 and not file_tops and tops != {"skills"}
    problems: list[Problem] = []
    entries: list[Entry] = []
    seen: dict[str, bool] = {}
    for info, segs, is_dir in raw:
        if strip:
            segs = segs[1:]
            if not segs:
                continue  # the wrapping folder's own member
        path = "/".join(segs)
        if path in seen:
            if is_dir and seen[path]:
                continue  # a folder listed twice is harmless
            problems.append(
                Problem(path, None, "appears twice in the zip (as a file and/or a folder)")
            )
            continue
        seen[path] = is_dir
        mode = info.external_attr >> 16
        entries.append(Entry(info=info, path=path, is_dir=is_dir, executable=bool(mode & 0o111)))
    file_paths = {e.path for e in entries if not e.is_dir}
    for e in entries:
        parts = e.path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in file_paths:
                problems.append(
                    Problem(parent, None, f"is a file but {e.path} needs it to be a folder")
                )
                break
    if problems:
        raise BundleInvalid(problems)
    return entries


def _all_dirs(entries: list[Entry]) -> Iterator[str]:
    for e in entries:
        parts = e.path.split("/")
        upto = len(parts) if e.is_dir else len(parts) - 1
        for i in range(1, upto + 1):
            yield "/".join(parts[:i])


def _write_new(target: Path, archive: BundleArchive, entry: Entry) -> None:
    mode = 0o755 if entry.executable else 0o644
    # O_EXCL: never write through anything already at that path (a link included).
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags, mode)
    except FileExistsError:
        raise BundleInvalid(
            [Problem(entry.path, None, "appears twice in the zip (as a file and/or a folder)")]
        ) from None
    with os.fdopen(fd, "wb") as out:
        os.fchmod(out.fileno(), mode)  # the umask must not decide the exec bits
        chunks = archive.iter_chunks(entry.path)
        while True:
            # Only reading is a bundle problem; a failed write (disk full) stays an OSError.
            try:
                chunk = next(chunks)
            except StopIteration:
                break
            except READ_ERRORS as exc:
                raise BundleInvalid([unreadable(entry.path, exc)]) from None
            out.write(chunk)


def _display(name: str) -> str:
    return "".join(f"\\x{ord(c):02x}" if _is_control(c) else c for c in name)


def _is_control(c: str) -> bool:
    return ord(c) < 32 or ord(c) == 127


def _size(n: int) -> str:
    if n >= MiB:
        return f"{n / MiB:.1f} MiB"
    return f"{n} bytes"
