"""``./dev chaos``: mixed load on a dev stack while every service and nats-server is
killed -9 and restarted; then checks that nothing was lost, stuck or run to two results,
and that every projection rebuilds equal. Exit 0 when all holds, 1 otherwise.

The harness is ``tests/chaos/chaos_harness.py`` (the CI test runs a short form of it).
Prints the figures (and every problem with its evidence); ``--json`` writes them too.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "chaos"))

from chaos_harness import ChaosConfig, run_chaos  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="./dev chaos", description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=1000, help="jobs submitted in all (1000)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent client threads (8)")
    ap.add_argument("--projects", type=int, default=2, help="projects the jobs go to (2)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the job mix (1)")
    ap.add_argument(
        "--duration", type=float, default=90.0, help="seconds the load is spread over (90)"
    )
    ap.add_argument(
        "--settle", type=float, default=120.0, help="seconds jobs may take to end after it (120)"
    )
    ap.add_argument(
        "--kills",
        default="gateway,scheduler,runner,runner-2,billing,drive,nats-server",
        help="what to kill -9 and restart, in order (comma-separated)",
    )
    ap.add_argument(
        "--rounds", type=int, default=2, help="times every process is killed in turn (2)"
    )
    ap.add_argument(
        "--nats-down", type=float, default=1.0, help="seconds nats-server stays dead (1)"
    )
    ap.add_argument("--work-dir", type=Path, help="stack work dir (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs) afterwards")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    cfg = ChaosConfig(
        jobs=args.jobs,
        clients=args.clients,
        projects=args.projects,
        seed=args.seed,
        duration_s=args.duration,
        settle_s=args.settle,
        kills=tuple(k for k in args.kills.split(",") if k),
        rounds=args.rounds,
        nats_down_s=args.nats_down,
        work_dir=args.work_dir,
        keep_work_dir=args.keep,
    )
    t0 = time.monotonic()

    def say(msg: str) -> None:
        print(f"[chaos {time.monotonic() - t0:6.1f}s] {msg}", file=sys.stderr, flush=True)

    report = run_chaos(cfg, progress=say)
    print(report.render())
    if args.json:
        args.json.write_text(json.dumps(report.figures(), indent=2) + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
