"""Record a golden log from a running stack, and its expected replay result.

    python tests/golden/record.py scenario --out tests/golden/NAME.jsonl
    python tests/golden/record.py agents --out tests/golden/NAME.jsonl
    python tests/golden/record.py billing --out tests/golden/NAME.jsonl
    python tests/golden/record.py drive --out tests/golden/NAME.jsonl
    python tests/golden/record.py feedback --out tests/golden/NAME.jsonl
    python tests/golden/record.py secrets --out tests/golden/NAME.jsonl
    python tests/golden/record.py dump --nats URL --out tests/golden/NAME.jsonl
    python tests/golden/record.py expect tests/golden/NAME.jsonl

``scenario`` starts a throwaway stack, exercises every fact the log can hold (see
:func:`scenario`; extend it when an event type is added), dumps the log and writes the
expectation. ``agents`` does the same for an agent run against the scripted fake
providers (``tests/fake_providers.py``), once billing has charged every usage event of
the run (``ledger.charged`` and ``job.cost``).

``drive`` runs the drive service on its own (a nats-server, Postgres and a storage
folder; no gateway) and calls its HTTP API as the gateway does: uploads by each of D2's
path rules, a file a job wrote (its event appended as a runner appends it), and deletes
of a file and of a folder.

``secrets`` sets, overwrites and deletes project secrets through the API, then rotates
the stack's master key (the gateway restarted with the new key, the old one as previous)
and re-seals them with ``/v1/admin/secrets/rotate``.

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


def scenario(api_base: str, admin_token: str, api: object) -> None:
    """Every event type at least once, through the HTTP API only.

    ``api`` is a funded project's ``stackapi.Api`` with nothing deployed yet.
    """
    import httpx

    from stackapi import PROJECT_DIR, Api

    assert isinstance(api, Api)
    # deployment.created + deployment.activated; a second, never active, then deleted.
    assert api.push(PROJECT_DIR, notes="v1").status_code == 200
    spare = api.push(PROJECT_DIR, notes="spare", activate="false")
    assert spare.status_code == 200, spare.text
    assert api.http.delete(f"/v1/deployments/{spare.json()['id']}").status_code == 200
    # job.queued, job.started, job.succeeded; job.log and job.failed.
    assert api.run("echo", {"text": "one"})["status"] == "succeeded"
    assert api.run("boom", {"n": 1})["status"] == "failed"
    # job.cancelled of a running job.
    nap = api.submit("nap", {"seconds": 30}).json()
    api.wait_for_event(nap["id"], "started")
    assert api.http.post(f"/v1/jobs/{nap['id']}/cancel").json()["status"] == "cancelled"
    # key.created by a key, key.revoked.
    made = api.http.post("/v1/keys")
    assert made.status_code == 200, made.text
    prefix = made.json()["prefix"]
    assert api.http.delete(f"/v1/keys/{prefix}").status_code == 200
    # A project without credit: job.queued held, job.cancelled of a queued job, then
    # ledger.credit_granted and job.released.
    with httpx.Client(
        base_url=api_base, headers={"Authorization": f"Bearer {admin_token}"}, timeout=60
    ) as admin:
        pid = admin.post("/v1/admin/projects", json={"name": "broke"}).json()["id"]
        key = admin.post(f"/v1/admin/projects/{pid}/keys").json()["key"]
        broke = Api(api_base, key, pid)
        try:
            assert broke.push(PROJECT_DIR, notes="b").status_code == 200
            never = broke.submit("echo", {"text": "never"}).json()
            assert broke.http.post(f"/v1/jobs/{never['id']}/cancel").json()["status"] == (
                "cancelled"
            )
            held = broke.submit("echo", {"text": "held"}).json()
            admin.post(f"/v1/admin/projects/{pid}/credits", json={"usd": 1})
            assert broke.wait_terminal(held["id"])["status"] == "succeeded"
        finally:
            broke.close()


def agent_scenario(api: object, fake: object) -> None:
    """Every agent event through one run: agent_start, model_response, usage, tool_call
    and tool_result (text and a file by reference), ending with set_output."""
    from fake_providers import FakeProviders, reply_tool

    from stackapi import Api

    assert isinstance(api, Api)
    assert isinstance(fake, FakeProviders)
    agents = HERE.parent / "e2e" / "agent_project"
    assert api.push(agents, notes="agents").status_code == 200
    png = (
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100e5270de40000000049454e44ae426082"
    )
    fake.anthropic.script(
        reply_tool(
            "bash",
            {
                "command": "python -c \"import sys; open('drive/dot.png', 'wb')"
                f".write(bytes.fromhex('{png}'))\" && ls drive"
            },
        ),
        reply_tool("file_read", {"paths": ["drive/dot.png"]}),
        reply_tool("set_output", {"answer": "a dot"}),
    )
    job = api.run("ask", {"prompt": "Draw a dot and look at it."})
    assert job["status"] == "succeeded", job


async def wait_billed(nats_url: str, count: int, timeout: float = 60) -> None:
    """Until the log holds ``count`` ``job.cost`` events (billing charges asynchronously)."""
    from puras_common.bus import connect
    from puras_common.events import decode_envelope
    from puras_common.events.subjects import EVENTS_STREAM

    bus = await connect(nats_url, name="golden-billed")
    seen = asyncio.Event()
    costs: set[str] = set()

    def note(data: bytes) -> None:
        env = decode_envelope(data)
        if env.type == "job.cost":
            costs.add(env.id)
            if len(costs) >= count:
                seen.set()

    async def on_msg(msg: object) -> None:
        note(msg.data)  # type: ignore[attr-defined]

    try:
        sub = await bus.nc.subscribe("ev.*.job.*", cb=on_msg)
        info = await bus.js.stream_info(EVENTS_STREAM)
        for seq in range(1, int(info.state.last_seq) + 1):
            note((await bus.js.get_msg(EVENTS_STREAM, seq=seq)).data or b"")
        await asyncio.wait_for(seen.wait(), timeout)
        await sub.unsubscribe()
    finally:
        await bus.close()


def record_agent_scenario(out: Path, *, billed_calls: int = 0) -> None:
    sys.path.insert(0, str(HERE.parent))
    from fake_providers import FakeProviders

    from stackapi import new_api, start_stack, stop_stack

    with FakeProviders.in_thread() as fake:
        stack, work = start_stack(
            {"ANTHROPIC_BASE_URL": fake.anthropic_base_url, "ANTHROPIC_API_KEY": "golden"}
        )
        try:
            api = new_api(stack, "golden-agents")
            try:
                agent_scenario(api, fake)
            finally:
                api.close()
            if billed_calls:
                asyncio.run(wait_billed(stack.nats_url, billed_calls))
            asyncio.run(dump(stack.nats_url, out))
        finally:
            stop_stack(stack, work)
    asyncio.run(expect(out))


def billing_scenario(stack: object, fake: object) -> None:
    """Billing's facts: a project's policy, a key created with a spend limit and its limit
    changed, an agent run whose charges take the balance below zero (announced), a grant
    that takes it above again (announced), and a media generation charged by its row."""
    import httpx
    from fake_providers import FakeProviders, Usage, reply_tool

    from puras_cli.devstack import Stack
    from puras_common.bus import connect
    from puras_common.events.ids import job_media_usage_id
    from puras_common.events.subjects import AGG_JOB
    from puras_common.events.types import MediaUsageRecorded
    from stackapi import Api

    assert isinstance(stack, Stack)
    assert isinstance(fake, FakeProviders)
    admin = httpx.Client(
        base_url=stack.api_base, headers={"Authorization": f"Bearer {stack.admin_token}"}
    )
    pid = admin.post("/v1/admin/projects", json={"name": "golden-billing"}).json()["id"]
    key = admin.post(
        f"/v1/admin/projects/{pid}/keys",
        json={"spend_limit": {"micros": 10_000_000, "period": "month"}},
    ).json()
    assert (
        admin.post(f"/v1/admin/projects/{pid}/credits", json={"micros": 50_000}).status_code == 200
    )
    api = Api(stack.api_base, key["key"], pid, stack.nats_url)
    try:
        assert api.http.put("/v1/billing/policy", json={"stop_agents_at_zero": False}).is_success
        limit = {"micros": 5_000_000, "period": "day"}
        assert api.http.put(f"/v1/keys/{key['prefix']}/spend_limit", json=limit).is_success
        agents = HERE.parent / "e2e" / "agent_project"
        assert api.push(agents, notes="billing").status_code == 200
        usage = Usage(input_tokens=10_000)  # 36,000 micros on claude/sonnet-4-6
        fake.anthropic.script(
            reply_tool("bash", {"command": "true"}, usage=usage),
            reply_tool("set_output", {"answer": "spent"}, usage=usage),
        )
        job = api.run("ask", {"prompt": "Spend a little."})
        assert job["status"] == "succeeded", job
        asyncio.run(wait_billed(stack.nats_url, 2))

        async def media() -> None:
            bus = await connect(stack.nats_url, name="golden-media")
            try:
                await bus.append(
                    MediaUsageRecorded(
                        call=1,
                        provider="fal",
                        model="openai/gpt-image-2",
                        inputs={"prompt": "a dot", "quality": "low", "size": "1024x768"},
                        outputs={"num_outputs": 1},
                        skill="ask",
                        key_prefix=key["prefix"],
                    ),
                    project_id=pid,
                    aggregate=AGG_JOB,
                    aggregate_id=job["id"],
                    event_id=job_media_usage_id(job["id"], 1),
                )
            finally:
                await bus.close()

        asyncio.run(media())
        asyncio.run(wait_billed(stack.nats_url, 3))
        assert admin.post(f"/v1/admin/projects/{pid}/credits", json={"micros": 100_000}).is_success
    finally:
        api.close()
        admin.close()


def record_billing_scenario(out: Path) -> None:
    sys.path.insert(0, str(HERE.parent))
    from fake_providers import FakeProviders

    from stackapi import start_stack, stop_stack

    with FakeProviders.in_thread() as fake:
        stack, work = start_stack(
            {"ANTHROPIC_BASE_URL": fake.anthropic_base_url, "ANTHROPIC_API_KEY": "golden"}
        )
        try:
            billing_scenario(stack, fake)
            asyncio.run(dump(stack.nats_url, out))
        finally:
            stop_stack(stack, work)
    asyncio.run(expect(out))


async def drive_scenario(out: Path) -> None:
    """The drive's facts: ``drive.file_written`` of uploads (no origin) and of a job's
    file (its origin), ``drive.files_deleted`` of a file and of a folder."""
    import tempfile

    from drive_harness import drive_client, drive_settings, running_drive

    from puras_cli.infra.nats_server import NatsServer, generate_passwords
    from puras_cli.infra.postgres import PostgresServer
    from puras_common.bus import connect, ensure_streams
    from puras_common.events.ids import drive_write_id
    from puras_common.events.subjects import AGG_DRIVE
    from puras_common.events.types import DriveFileWritten, DriveOrigin
    from puras_common.ids import new_id

    with tempfile.TemporaryDirectory() as tmp:
        nats = NatsServer(store_dir=Path(tmp) / "nats", passwords=generate_passwords()).start()
        pg = PostgresServer(data_dir=Path(tmp) / "pg", fsync=False).start()
        try:
            bus = await connect(nats.url, name="golden-drive")
            await ensure_streams(bus.js)
            settings = drive_settings(
                nats, pg.create_database("golden_drive"), root=Path(tmp) / "drive"
            )
            project = new_id()
            async with running_drive(settings) as server, drive_client(server, project) as api:
                for name, path in (
                    ("notes.txt", "docs/notes.txt"),
                    ("cat.png", "photos/"),
                    ("dog.png", ""),
                    ("old.txt", "docs/old.txt"),
                ):
                    got = await api.post(
                        "/v1/drive/upload", files={"file": (name, b"golden")}, data={"path": path}
                    )
                    assert got.status_code == 200, got.text
                job = DriveOrigin(job_id=new_id(), skill="painter", tool="media")
                (settings.root / project / "renders").mkdir(parents=True)
                (settings.root / project / "renders" / "out.png").write_bytes(b"\x89PNG\r\n")
                await bus.append(
                    DriveFileWritten(
                        path="renders/out.png",
                        bytes=6,
                        sha256="",
                        content_type="image/png",
                        origin=job,
                    ),
                    project_id=project,
                    aggregate=AGG_DRIVE,
                    aggregate_id=project,
                    event_id=drive_write_id(new_id()),
                )
                listed = await api.get("/v1/drive/list", params={"prefix": "renders/"})
                assert [f["path"] for f in listed.json()["files"]] == ["renders/out.png"]
                for path in ("docs/old.txt", "photos/"):
                    gone = await api.delete("/v1/drive/object", params={"path": path})
                    assert gone.status_code == 200, gone.text
            await bus.close()
            await dump(nats.url, out)
        finally:
            nats.cleanup()
            pg.cleanup()


def record_drive_scenario(out: Path) -> None:
    sys.path.insert(0, str(HERE.parent))
    asyncio.run(drive_scenario(out))
    asyncio.run(expect(out))


def secrets_scenario(stack: object, api: object) -> None:
    """``secret.set`` (created, overwritten, re-sealed by a rotation) and ``secret.deleted``."""
    import httpx

    from puras_cli.devstack import Stack
    from puras_common.secret_box import generate_key
    from stackapi import Api

    assert isinstance(stack, Stack)
    assert isinstance(api, Api)
    for name, value in (("API_KEY", "golden-one"), ("GONE", "golden-gone"), ("API_KEY", "two")):
        put = api.http.put(f"/v1/secrets/{name}", json={"value": value})
        assert put.status_code == 200, put.text
    assert api.http.delete("/v1/secrets/GONE").status_code == 200
    old = stack.secrets_key
    stack.set_secrets_keys(generate_key(), [old])
    stack.restart_service("gateway")
    with httpx.Client(
        base_url=stack.api_base,
        headers={"Authorization": f"Bearer {stack.admin_token}"},
        timeout=60,
    ) as admin:
        report = admin.post("/v1/admin/secrets/rotate").json()
    assert report["resealed"] == 1, report


def record_secrets_scenario(out: Path) -> None:
    sys.path.insert(0, str(HERE.parent))
    from stackapi import new_api, start_stack, stop_stack

    stack, work = start_stack()
    try:
        api = new_api(stack, "golden-secrets")
        try:
            secrets_scenario(stack, api)
        finally:
            api.close()
        asyncio.run(dump(stack.nats_url, out))
    finally:
        stop_stack(stack, work)
    asyncio.run(expect(out))


def feedback_scenario(api: object) -> None:
    """``feedback.given``: a thumb up with a comment, an anonymous comment without a
    thumb, and the first user's feedback given again (a thumb down)."""
    from stackapi import PROJECT_DIR, Api

    assert isinstance(api, Api)
    assert api.push(PROJECT_DIR, notes="feedback").status_code == 200
    job = api.run("echo", {"text": "rate me"})
    assert job["status"] == "succeeded", job
    for body in (
        {"rating": 1, "comment": "spot on", "end_user_id": "user-1"},
        {"comment": "no thumb, just a remark"},
        {"rating": -1, "end_user_id": "user-1"},
    ):
        given = api.http.post(f"/v1/jobs/{job['id']}/feedback", json=body)
        assert given.status_code == 200, given.text


def record_feedback_scenario(out: Path) -> None:
    sys.path.insert(0, str(HERE.parent))
    from stackapi import new_api, start_stack, stop_stack

    stack, work = start_stack()
    try:
        api = new_api(stack, "golden-feedback")
        try:
            feedback_scenario(api)
        finally:
            api.close()
        asyncio.run(dump(stack.nats_url, out))
    finally:
        stop_stack(stack, work)
    asyncio.run(expect(out))


def builds_scenario(api: object, tmp: Path) -> None:
    """Push-time builds (Z7): ``deployment.created`` with ``build``, ``deployment.built``
    (then the activation the push asked for), a second push of the same file answered
    from the venv (``reused``), and ``deployment.build_failed`` never activated."""
    import shutil

    from stackapi import PROJECT_DIR, Api

    assert isinstance(api, Api)

    def project(name: str, requirements: str) -> Path:
        dst = tmp / name
        shutil.copytree(PROJECT_DIR, dst)
        (dst / "requirements.txt").write_text(requirements)
        return dst

    first = api.push(project("a", "six==1.16.0\n"), notes="built")
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "ready", first.text
    again = api.push(project("b", "six==1.16.0\n"), notes="reused", activate="false")
    assert again.status_code == 200, again.text
    failed = api.push(project("c", "puras-no-such-package-xyz==1.0\n"), notes="failed")
    assert failed.status_code == 422, failed.text


def record_builds_scenario(out: Path) -> None:
    import tempfile

    sys.path.insert(0, str(HERE.parent))
    from stackapi import new_api, start_stack, stop_stack

    stack, work = start_stack()
    try:
        api = new_api(stack, "golden-builds")
        try:
            with tempfile.TemporaryDirectory() as tmp:
                builds_scenario(api, Path(tmp))
        finally:
            api.close()
        asyncio.run(dump(stack.nats_url, out))
    finally:
        stop_stack(stack, work)
    asyncio.run(expect(out))


def record_scenario(out: Path) -> None:
    # The stack runs its own event loop to start: no loop may be running here.
    sys.path.insert(0, str(HERE.parent))
    from stackapi import new_api, start_stack, stop_stack

    stack, work = start_stack()
    try:
        api = new_api(stack, "golden")
        try:
            scenario(stack.api_base, stack.admin_token, api)
        finally:
            api.close()
        asyncio.run(dump(stack.nats_url, out))
    finally:
        stop_stack(stack, work)
    asyncio.run(expect(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--nats", required=True)
    d.add_argument("--out", required=True, type=Path)
    e = sub.add_parser("expect")
    e.add_argument("log", type=Path)
    sc = sub.add_parser("scenario")
    sc.add_argument("--out", required=True, type=Path)
    ag = sub.add_parser("agents", help="an agent run against the scripted fake providers, billed")
    ag.add_argument("--out", required=True, type=Path)
    bi = sub.add_parser("billing", help="billing's facts: limits, policy, crossings, media")
    bi.add_argument("--out", required=True, type=Path)
    dr = sub.add_parser("drive", help="the drive's facts: uploads, a job's file, deletes")
    dr.add_argument("--out", required=True, type=Path)
    se = sub.add_parser("secrets", help="secrets set, overwritten, deleted, re-sealed")
    se.add_argument("--out", required=True, type=Path)
    fb = sub.add_parser("feedback", help="feedback on a job: given, anonymous, given again")
    fb.add_argument("--out", required=True, type=Path)
    bu = sub.add_parser("builds", help="push-time builds: built, reused, failed (network)")
    bu.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    if args.cmd == "dump":
        asyncio.run(dump(args.nats, args.out))
    elif args.cmd == "scenario":
        record_scenario(args.out)
    elif args.cmd == "agents":
        record_agent_scenario(args.out, billed_calls=3)
    elif args.cmd == "billing":
        record_billing_scenario(args.out)
    elif args.cmd == "drive":
        record_drive_scenario(args.out)
    elif args.cmd == "secrets":
        record_secrets_scenario(args.out)
    elif args.cmd == "feedback":
        record_feedback_scenario(args.out)
    elif args.cmd == "builds":
        record_builds_scenario(args.out)
    else:
        asyncio.run(expect(args.log))


if __name__ == "__main__":
    main()
