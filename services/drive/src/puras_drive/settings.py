"""Drive settings (env prefix ``PURAS_DRIVE_``, falling back to ``PURAS_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from puras_common.settings import ServiceSettings

__all__ = ["DriveSettings"]


class DriveSettings(ServiceSettings):
    service: ClassVar[str] = "drive"

    root: Path = Path("/var/lib/puras/drive")
    """Local-filesystem drive: one folder per project under this root (env PURAS_DRIVE_ROOT)."""
