"""``puras-scheduler``: see :mod:`puras_scheduler.bootstrap`."""

from __future__ import annotations

from puras_common.service import run_service
from puras_scheduler.bootstrap import run
from puras_scheduler.settings import SchedulerSettings


def main() -> None:
    run_service(SchedulerSettings, run)


if __name__ == "__main__":
    main()
