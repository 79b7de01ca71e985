"""Where a project's drive lives, on the local filesystem and in the bucket (pure).

Layout (SPEC D1: one storage root or bucket, isolation by prefix):

* filesystem: ``<root>/<project_id>/<drive path>``; the runner shows that folder to the
  project's jobs as ``./drive``. ``<root>/.staging/`` holds uploads until they are
  complete (a project id cannot start with a dot, so no project is called that).
* S3: ``drive/<project_id>/<drive path>`` in one bucket; the ``drive/`` area leaves room
  for the service's other areas (bundles) in the same bucket.

A project id is checked here and a drive path by ``puras_common.drive_paths``: neither
can hold a ``/`` of its own or a ``..``, so a project's keys never reach another's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

__all__ = [
    "KEY_AREA",
    "STAGING_DIR",
    "check_project_id",
    "object_key",
    "project_drive_dir",
    "project_key_prefix",
]

_PROJECT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

KEY_AREA: Final = "drive/"
"""Where the projects' drives are in the bucket."""
STAGING_DIR: Final = ".staging"
"""Folder of the filesystem root holding uploads in progress."""


def check_project_id(project_id: str) -> str:
    """``project_id`` if it can name a drive; ``ValueError`` otherwise."""
    if not isinstance(project_id, str) or not _PROJECT_ID.match(project_id):
        raise ValueError(f"not a project id: {project_id!r}")
    return project_id


def project_drive_dir(root: Path, project_id: str) -> Path:
    """``<root>/<project_id>``; refuses an id that could leave the root."""
    return root / check_project_id(project_id)


def project_key_prefix(project_id: str) -> str:
    """``drive/<project_id>/``: every key of the project's drive starts with it."""
    return f"{KEY_AREA}{check_project_id(project_id)}/"


def object_key(project_id: str, path: str) -> str:
    """The bucket key of a canonical drive path (or of a folder prefix ending in ``/``)."""
    return project_key_prefix(project_id) + path
