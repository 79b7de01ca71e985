"""What the drive's storage hands back, and what it refuses (pure)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = [
    "DriveConflict",
    "DriveLinkRefused",
    "DriveNotFound",
    "DriveStorageError",
    "DriveTooLarge",
    "FileInfo",
    "FolderInfo",
    "ObjectInfo",
    "ObjectStream",
    "StoredObject",
]


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A file just written."""

    path: str
    """Its canonical drive path."""
    size: int
    """Bytes written."""
    sha256: str
    """Hex SHA-256 of the bytes written, computed while they streamed through."""
    content_type: str
    """Sniffed from its first bytes and its name (``domain.content_types``)."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file in a listing."""

    path: str
    """Canonical drive path."""
    size: int
    modified: datetime
    """When it was last written (UTC)."""
    kind: Literal["file"] = "file"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class FolderInfo:
    """A folder in a listing: a prefix that files are under."""

    path: str
    """Canonical drive path, without the trailing ``/``."""
    kind: Literal["folder"] = "folder"

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One file, as ``stat`` and ``open`` see it."""

    path: str
    size: int
    modified: datetime
    content_type: str


@dataclass(frozen=True, slots=True)
class ObjectStream:
    """An open file: what it is, and its bytes in chunks (read while iterated)."""

    info: ObjectInfo
    chunks: AsyncIterator[bytes]


class DriveStorageError(Exception):
    """Something the caller asked of the drive that cannot be done; ``str()`` says what
    and how to fix it."""


class DriveNotFound(DriveStorageError):
    """No file at that path (an HTTP 404)."""


class DriveConflict(DriveStorageError):
    """The path collides with what is there: a folder where a file is written, or a file
    where a folder is needed (an HTTP 409)."""


class DriveLinkRefused(DriveStorageError):
    """The path goes through a symbolic link, which the drive never follows (an HTTP
    400): a link a job made could point outside the project's folder."""


class DriveTooLarge(DriveStorageError):
    """More bytes than the caller's cap (an HTTP 413); nothing was stored."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the file is larger than {limit} bytes; send a smaller one")
