"""What the drive's handlers need from the world, as protocols (the local-filesystem
adapter in ``puras_drive.adapters``; an in-memory one in the unit tests; one contract
suite for both). An object-store backend implements the same port."""

from __future__ import annotations

from typing import Protocol

__all__ = ["DriveStore"]


class DriveStore(Protocol):
    """Where projects' drives live: one private drive per project."""

    async def provision(self, project_id: str) -> str:
        """Make sure the project has its drive (repeating it changes nothing); returns
        where the drive is, for operators. Raises ``ValueError`` for an id that cannot
        name a drive."""
        ...

    async def is_provisioned(self, project_id: str) -> bool:
        """Whether the project has its drive (``ValueError`` as for :meth:`provision`)."""
        ...
