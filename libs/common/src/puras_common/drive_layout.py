"""Where a project's drive is in the bucket (SPEC D1: one bucket, isolation by prefix):
``drive/<project_id>/<drive path>``. The drive service stores there; runners sync their
jobs' drive folders with it (the S3 backend). A project id is checked here and a path by
:mod:`puras_common.drive_paths`: neither holds a ``/`` or ``..`` of its own, so one
project's keys never reach another's."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["KEY_AREA", "check_project_id", "object_key", "project_key_prefix"]

_PROJECT_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

KEY_AREA: Final = "drive/"
"""Where the projects' drives are in the bucket."""


def check_project_id(project_id: str) -> str:
    """``project_id`` if it can name a drive; ``ValueError`` otherwise."""
    if not isinstance(project_id, str) or not _PROJECT_ID.match(project_id):
        raise ValueError(f"not a project id: {project_id!r}")
    return project_id


def project_key_prefix(project_id: str) -> str:
    """``drive/<project_id>/``: every key of the project's drive starts with it."""
    return f"{KEY_AREA}{check_project_id(project_id)}/"


def object_key(project_id: str, path: str) -> str:
    """The bucket key of a canonical drive path (or of a folder prefix ending in ``/``)."""
    return project_key_prefix(project_id) + path
