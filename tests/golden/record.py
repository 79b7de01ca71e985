"""Record a golden log from a running stack, and its expected replay result.

    python tests/golden/record.py dump --nats URL --out tests/golden/NAME.jsonl
    python tests/golden/record.py expect tests/golden/NAME.jsonl

``expect`` replays the log into a throwaway nats-server and Postgres exactly as the test
does and writes what today's code derives; read it before committing it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).parent))

from golden import HERE, LogLine


async def dump(nats_url: str, out: Path) -> None:
    from puras_common.bus import connect
    from puras_common.events.subjects import EVENTS_STREAM

    bus = await connect(nats_url, name="golden-recorder")
    try:
        info = await bus.js.stream_info(EVENTS_STREAM)
        lines = []
        for seq in range(1, int(info.state.last_seq) + 1):
            msg = await bus.js.get_msg(EVENTS_STREAM, seq=seq)
            lines.append(
                msgspec.json.encode(
                    LogLine(seq=seq, subject=msg.subject or "", data=msgspec.Raw(msg.data or b""))
                ).decode()
            )
        out.write_text("\n".join(lines) + "\n")
        print(f"wrote {len(lines)} events to {out}")
    finally:
        await bus.close()


async def expect(log: Path) -> None:
    import tempfile

    from puras_cli.infra.nats_server import NatsServer
    from puras_cli.infra.postgres import PostgresServer

    sys.path.insert(0, str(HERE.parent / "integration"))
    from test_golden_logs import replay_into  # type: ignore[import-not-found]

    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(store_dir=Path(tmp) / "nats").start()
        pg = PostgresServer(data_dir=Path(tmp) / "pg", fsync=False).start()
        try:
            result = await replay_into(log, nats.url, pg.create_database("golden"))
        finally:
            nats.cleanup()
            pg.cleanup()
    target = log.with_suffix(".expected.json")
    target.write_bytes(msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n")
    print(f"wrote {target}")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--nats", required=True)
    d.add_argument("--out", required=True, type=Path)
    e = sub.add_parser("expect")
    e.add_argument("log", type=Path)
    args = ap.parse_args()
    if args.cmd == "dump":
        asyncio.run(dump(args.nats, args.out))
    else:
        asyncio.run(expect(args.log))


if __name__ == "__main__":
    main()
