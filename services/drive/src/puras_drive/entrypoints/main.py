"""``puras-drive``: see :mod:`puras_drive.bootstrap`."""

from __future__ import annotations

from puras_common.service import run_service
from puras_drive.bootstrap import run
from puras_drive.settings import DriveSettings


def main() -> None:
    run_service(DriveSettings, run)


if __name__ == "__main__":
    main()
