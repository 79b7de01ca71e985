"""Where an upload goes (SPEC D2), pure.

* no ``path`` (or an empty one): ``uploads/<id>.<ext>``, the extension taken from the
  uploaded file's name (none if it has none);
* a ``path`` ending in ``/``: that folder plus the uploaded file's own name;
* any other ``path``: exactly that file.

Every result goes through the drive's one normalizer, so a traversal in either the
``path`` field or the file's name is refused with its message (a 400).
"""

from __future__ import annotations

import re
from typing import Final

from puras_common.drive_paths import DrivePathError, normalize_file_path, normalize_path

__all__ = ["UPLOADS_FOLDER", "upload_path"]

UPLOADS_FOLDER: Final = "uploads"
_EXT = re.compile(r"^[A-Za-z0-9]{1,16}$")


def upload_path(path: str | None, filename: str | None, new_id: str) -> str:
    """The canonical drive path of an upload; :class:`DrivePathError` if none can be made.

    ``filename`` is the multipart part's file name as the client sent it; only its last
    component counts (browsers on some systems send ``C:\\\\dir\\\\x.png``), and only
    for the two rules that use it.
    """
    target = (path or "").strip()
    if not target:
        return normalize_file_path(f"{UPLOADS_FOLDER}/{new_id}{_extension(filename)}")
    folder = normalize_path(target)
    if not folder.folder:
        return folder.path
    name = _base_name(filename)
    if not name:
        raise DrivePathError(
            target,
            "it names a folder and the uploaded file has no name to put in it; send the "
            "file with a file name, or give the whole path (e.g. uploads/photo.jpg)",
        )
    return normalize_file_path(f"{folder.prefix}{name}")


def _base_name(filename: str | None) -> str:
    # The last component, whichever separator the client's system uses.
    return re.split(r"[/\\]", filename or "")[-1].strip()


def _extension(filename: str | None) -> str:
    name = _base_name(filename)
    stem, dot, ext = name.rpartition(".")
    # A generated name: an extension that is plainly one, lowercased, or none at all.
    if not dot or not stem or not _EXT.match(ext):
        return ""
    return f".{ext.lower()}"
