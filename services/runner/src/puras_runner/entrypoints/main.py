"""``puras-runner``: runs jobs from ``work.<pool>``.

Exits non-zero when it cannot start (configuration, NATS unreachable, a stream or
consumer that does not match its declaration). SIGTERM / SIGINT stop it cleanly:
running jobs get ``shutdown_grace_s`` to finish, the rest are killed and given back.
"""

from __future__ import annotations

from puras_common.service import run_service
from puras_runner.bootstrap import run
from puras_runner.settings import RunnerSettings


def main() -> None:
    run_service(RunnerSettings, run, grace_s=lambda s: s.shutdown_grace_s + 10)


if __name__ == "__main__":
    main()
