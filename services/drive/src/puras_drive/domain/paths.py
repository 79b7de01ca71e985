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

from pathlib import Path
from typing import Final

# The bucket's layout is shared with the runners, which sync jobs' drives with it.
from puras_common.drive_layout import KEY_AREA, check_project_id, object_key, project_key_prefix

__all__ = [
    "KEY_AREA",
    "STAGING_DIR",
    "check_project_id",
    "object_key",
    "project_drive_dir",
    "project_key_prefix",
]

STAGING_DIR: Final = ".staging"
"""Folder of the filesystem root holding uploads in progress."""


def project_drive_dir(root: Path, project_id: str) -> Path:
    """``<root>/<project_id>``; refuses an id that could leave the root."""
    return root / check_project_id(project_id)
