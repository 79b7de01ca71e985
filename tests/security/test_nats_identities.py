"""Attacks on the event log through NATS, against a real nats-server started with the
generated configuration (the ``nats_server`` fixture): each service identity may publish
only the facts it owns (ARCHITECTURE §7, ``puras_common.bus.permissions``).

A refused publish is seen the way a compromised service would see it: the server answers
``Permissions Violation`` and the message is dropped. Each test then checks through the
privileged harness connection (``bus``) that nothing reached the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest

from puras_cli.infra.nats_server import NatsServer
from puras_common.builds import BuildOutcome, encode_build_outcome
from puras_common.bus import Bus, NatsLoginRefused, connect
from puras_common.bus.permissions import NatsCredentials
from puras_common.events.commands import SubmitJob, encode_command
from puras_common.events.subjects import (
    AGG_DEPLOYMENTS,
    AGG_JOB,
    AGG_KEY,
    AGG_LEDGER,
    BUILDS_STREAM,
    CMDS_STREAM,
    EVENTS_STREAM,
    build_subject,
    built_subject,
    event_subject,
    live_subject,
    submit_subject,
)
from puras_common.events.types import (
    ApiKeyCreated,
    CreditGranted,
    DeploymentActivated,
    JobSucceeded,
)
from puras_common.ids import new_id

VIOLATION_WAIT_S = 10.0
"""Upper bound on the server's -ERR reaching us (it comes at once)."""


@dataclass
class Conn:
    """A raw connection of one identity, with every error the server sent it."""

    bus: Bus
    errors: asyncio.Queue[str]

    async def violation(self) -> str:
        """The next permissions violation the server reported on this connection."""
        while True:
            err = await asyncio.wait_for(self.errors.get(), VIOLATION_WAIT_S)
            if "permissions violation" in err.lower():
                return err

    async def refused(self, attempt: Awaitable[Any]) -> str:
        """Run ``attempt`` (a publish or request) and return the violation it caused; the
        attempt itself must never succeed (a refused publish gets no ack)."""
        task = asyncio.ensure_future(attempt)
        try:
            err = await self.violation()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, nats.errors.Error, TimeoutError):
                await task
        assert task.cancelled() or task.exception() is not None, "the publish was acked"
        return err

    async def subscribe_refused(self, subject: str) -> str:
        """Subscribe (which the client accepts locally) and return the server's refusal."""
        sub = await self.bus.nc.subscribe(subject)
        await self.bus.nc.flush()
        try:
            return await self.violation()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


@pytest.fixture
async def login(nats_server: NatsServer) -> AsyncIterator[Callable[[str], Awaitable[Conn]]]:
    opened: list[Conn] = []

    async def _login(identity: str) -> Conn:
        creds = nats_server.credentials(identity)
        errors: asyncio.Queue[str] = asyncio.Queue()

        async def on_error(e: Exception) -> None:
            errors.put_nowait(str(e))

        nc = await nats.connect(
            nats_server.address,
            user=creds.user,
            password=creds.password,
            inbox_prefix=creds.inbox_prefix,
            error_cb=on_error,
            allow_reconnect=False,
        )
        conn = Conn(Bus(nc, timeout=VIOLATION_WAIT_S), errors)
        opened.append(conn)
        return conn

    yield _login
    for c in opened:
        with contextlib.suppress(Exception):
            await c.bus.nc.close()


async def _stored(bus: Bus, subject: str, stream: str = EVENTS_STREAM) -> int:
    info = await bus.js.stream_info(stream, subjects_filter=subject)
    return sum((info.state.subjects or {}).values())


def _forged_end() -> JobSucceeded:
    return JobSucceeded(
        result={"forged": True},
        attempt=1,
        finished_at=datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC),
    )


async def test_an_anonymous_connection_is_refused(nats_server: NatsServer) -> None:
    with pytest.raises(NatsLoginRefused):
        await connect(nats_server.address, name="anonymous", initial_timeout=10)


async def test_a_wrong_password_is_refused(nats_server: NatsServer) -> None:
    wrong = NatsCredentials(user="runner", password="not-the-password", inbox_prefix="_INBOX")
    with pytest.raises(NatsLoginRefused, match="runner"):
        await connect(nats_server.address, name="guess", initial_timeout=10, credentials=wrong)


async def test_the_runner_publishes_its_jobs_events(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    runner = await login("runner")
    project, job = new_id(), new_id()
    pub = await runner.bus.append(
        _forged_end(),
        project_id=project,
        aggregate=AGG_JOB,
        aggregate_id=job,
        event_id=f"{job}:terminal",
    )
    assert pub.seq > 0
    assert await _stored(bus, event_subject(project, AGG_JOB, job)) == 1


async def test_the_runner_holds_spend_and_reads_balances_under_its_own_identity(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    """Z1: a runner reserves a call's worst case on its key's spend window and reads the
    project's balance from its ledger's last entry; a gateway may do neither."""
    from puras_common.events.types import SpendLimit
    from puras_common.spend.book import KvSpendBook
    from puras_runner.adapters.balances import LedgerBalances

    runner = await login("runner")
    project = new_id()
    now = datetime.now(UTC)
    limit = SpendLimit(micros=100, period="day")
    book = KvSpendBook(runner.bus)
    assert (
        await book.reserve(
            project,
            "keyp1",
            limit,
            hold_id="j:usage:1",
            micros=60,
            now=now,
            expires_at=now.replace(year=now.year + 1),
        )
        is None
    )
    refused = await book.reserve(
        project, "keyp1", limit, hold_id="j:usage:2", micros=60, now=now, expires_at=now
    )
    assert refused is not None
    assert refused.spent == 60
    assert await LedgerBalances(runner.bus).balance(project) is None
    gateway = await login("gateway")
    await gateway.refused(gateway.bus.js.publish("$KV.PURAS_SPEND.x.y", b"{}"))


async def test_the_runner_cannot_create_a_key_for_another_project(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    runner = await login("runner")
    victim = new_id()
    subject = event_subject(victim, AGG_KEY, "evilkey1")
    err = await runner.refused(
        runner.bus.append(
            ApiKeyCreated(prefix="evilkey1", secret_sha256="0" * 64, created_by="runner"),  # type: ignore[arg-type]
            project_id=victim,
            aggregate=AGG_KEY,
            aggregate_id="evilkey1",
            event_id="key:evilkey1:created",
        )
    )
    assert subject.lower() in err.lower()
    assert await _stored(bus, subject) == 0


async def test_the_runner_cannot_grant_credit(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    runner = await login("runner")
    project = new_id()
    await runner.refused(
        runner.bus.append(
            CreditGranted(grant_id=new_id(), micros=10**12, note="free money"),
            project_id=project,
            aggregate=AGG_LEDGER,
            aggregate_id=project,
            event_id=f"grant:{new_id()}",
        )
    )
    assert await _stored(bus, event_subject(project, AGG_LEDGER, project)) == 0


async def test_the_runner_cannot_activate_a_deployment(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    runner = await login("runner")
    project = new_id()
    await runner.refused(
        runner.bus.append(
            DeploymentActivated(deployment_id=new_id()),
            project_id=project,
            aggregate=AGG_DEPLOYMENTS,
            aggregate_id=project,
            event_id=f"{new_id()}:activated",
        )
    )
    assert await _stored(bus, event_subject(project, AGG_DEPLOYMENTS, project)) == 0


async def test_the_runner_reports_build_outcomes_but_cannot_request_builds(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    # Z7: a runner reports a push-time build's outcome to the gateways, which record it
    # (deployment facts have one writer); asking for builds is the gateway's alone.
    runner = await login("runner")
    project = new_id()
    report = BuildOutcome(project_id=project, deployment_id=new_id(), venv_key="base")
    await runner.bus.publish_raw(
        built_subject(project), encode_build_outcome(report), stream=CMDS_STREAM
    )
    assert await _stored(bus, built_subject(project), stream=CMDS_STREAM) == 1
    await runner.refused(
        runner.bus.publish_raw(build_subject(project), b"{}", stream=BUILDS_STREAM)
    )
    assert await _stored(bus, build_subject(project), stream=BUILDS_STREAM) == 0
    # Nothing else addressed to the gateways: the report subject is all it may use.
    other = "cmd.gateway.activate." + project
    await runner.refused(runner.bus.publish_raw(other, b"{}", stream=CMDS_STREAM))
    assert await _stored(bus, other, stream=CMDS_STREAM) == 0


async def test_the_runner_cannot_send_commands(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    runner = await login("runner")
    cmd = SubmitJob(
        job_id=new_id(),
        project_id=new_id(),
        skill="echo",
        inputs={},
        submitted_at=datetime.now(UTC),
    )
    await runner.refused(
        runner.bus.publish_raw(
            submit_subject(cmd.project_id, cmd.job_id),
            encode_command(cmd),
            msg_id=cmd.job_id,
            stream=CMDS_STREAM,
        )
    )
    assert await _stored(bus, "cmd.>", CMDS_STREAM) == 0


async def test_the_scheduler_cannot_create_keys(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    scheduler = await login("scheduler")
    victim = new_id()
    await scheduler.refused(
        scheduler.bus.append(
            ApiKeyCreated(prefix="schedkey", secret_sha256="1" * 64, created_by="scheduler"),  # type: ignore[arg-type]
            project_id=victim,
            aggregate=AGG_KEY,
            aggregate_id="schedkey",
            event_id="key:schedkey:created",
        )
    )
    assert await _stored(bus, event_subject(victim, AGG_KEY, "schedkey")) == 0


async def test_the_gateway_cannot_forge_a_job_result(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    # Job facts come from the scheduler and the runners; the gateway only sends commands.
    gateway = await login("gateway")
    project, job = new_id(), new_id()
    await gateway.refused(
        gateway.bus.append(
            _forged_end(),
            project_id=project,
            aggregate=AGG_JOB,
            aggregate_id=job,
            event_id=f"{job}:terminal",
        )
    )
    assert await _stored(bus, event_subject(project, AGG_JOB, job)) == 0


@pytest.mark.parametrize("identity", ["gateway", "drive"])
async def test_only_billing_writes_the_ledger(
    identity: str, bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    # The gateway sends grants to billing as commands; it cannot append one itself.
    conn = await login(identity)
    project = new_id()
    await conn.refused(
        conn.bus.append(
            CreditGranted(grant_id=new_id(), micros=10**12, note=identity),
            project_id=project,
            aggregate=AGG_LEDGER,
            aggregate_id=project,
            event_id=f"grant:{new_id()}",
        )
    )
    assert await _stored(bus, event_subject(project, AGG_LEDGER, project)) == 0


async def test_billing_writes_the_ledger_and_nothing_else(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    billing = await login("billing")
    project = new_id()
    pub = await billing.bus.append(
        CreditGranted(grant_id=new_id(), micros=5),
        project_id=project,
        aggregate=AGG_LEDGER,
        aggregate_id=project,
        event_id=f"grant:{new_id()}",
        expected_last_subject_seq=0,
    )
    assert pub.seq > 0
    await billing.refused(
        billing.bus.append(
            ApiKeyCreated(prefix="billkey1", secret_sha256="2" * 64, created_by="admin"),
            project_id=project,
            aggregate=AGG_KEY,
            aggregate_id="billkey1",
            event_id="key:billkey1:created",
        )
    )
    assert await _stored(bus, event_subject(project, AGG_KEY, "billkey1")) == 0


async def test_no_service_can_delete_or_rewrite_the_log(
    bus: Bus, login: Callable[[str], Awaitable[Conn]]
) -> None:
    project, job = new_id(), new_id()
    pub = await bus.append(
        _forged_end(),
        project_id=project,
        aggregate=AGG_JOB,
        aggregate_id=job,
        event_id=f"{job}:terminal",
    )
    for identity in ("gateway", "scheduler", "runner", "billing", "drive"):
        conn = await login(identity)
        await conn.refused(conn.bus.js.delete_msg(EVENTS_STREAM, pub.seq))
        await conn.refused(conn.bus.js.delete_stream(EVENTS_STREAM))
        await conn.refused(conn.bus.js.purge_stream(CMDS_STREAM))
    assert (await bus.js.get_msg(EVENTS_STREAM, pub.seq)).seq == pub.seq


async def test_the_runner_cannot_read_another_identitys_replies(
    login: Callable[[str], Awaitable[Conn]],
) -> None:
    # Replies (acks, direct gets of events, KV reads) go to each identity's own inbox
    # prefix; a wildcard subscription to everyone's is refused.
    runner = await login("runner")
    assert "_inbox.>" in (await runner.subscribe_refused("_INBOX.>")).lower()
    assert "_inbox.gateway.>" in (await runner.subscribe_refused("_INBOX.gateway.>")).lower()


async def test_the_runner_cannot_read_idempotency_keys_or_commands(
    login: Callable[[str], Awaitable[Conn]],
) -> None:
    runner = await login("runner")
    await runner.refused(runner.bus.js.stream_info("KV_PURAS_IDEMPOTENCY"))
    await runner.subscribe_refused("cmd.>")


async def test_live_text_goes_from_the_runner_to_the_gateway_only(
    login: Callable[[str], Awaitable[Conn]],
) -> None:
    runner, gateway = await login("runner"), await login("gateway")
    subject = live_subject(new_id(), new_id())
    heard = await gateway.bus.nc.subscribe(subject)
    await gateway.bus.nc.flush()
    await runner.bus.nc.publish(subject, b'{"type": "model_delta", "step": 1, "text": "hi"}')
    # Flushed, so the frame is at the server before the wait starts: a busy machine
    # must not turn a delivered frame into a timeout.
    await runner.bus.nc.flush()
    msg = await heard.next_msg(timeout=30)
    assert msg.data.startswith(b'{"type": "model_delta"')
    for name in ("scheduler", "billing", "drive", "runner"):
        conn = runner if name == "runner" else await login(name)
        assert subject in await conn.subscribe_refused(subject), name
    scheduler = await login("scheduler")
    await scheduler.bus.nc.publish(subject, b"{}")
    assert subject in await scheduler.violation()


async def test_billing_charges_usage_through_its_own_reader(
    nats_server: NatsServer, bus: Bus
) -> None:
    # Billing's real adapters under its own identity: it reads the job subjects in order
    # (and a held usage event by sequence), appends the charge to the ledger and
    # job.cost to the job's subject, and removes the durable it used to ack on.
    from puras_billing.adapters.job_events import (
        JOB_FILTER,
        JobEventFollower,
        delete_legacy_durable,
        fetch_job_event,
    )
    from puras_billing.adapters.job_log import NatsJobLog
    from puras_billing.adapters.ledger_log import NatsLedgerLog
    from puras_billing.bootstrap import build
    from puras_billing.settings import BillingSettings
    from puras_common.bus import ensure_durable
    from puras_common.events import decode_envelope, decode_event
    from puras_common.events.ids import BILLING_USAGE_DURABLE, job_usage_id
    from puras_common.events.types import ModelUsage, UsageRecorded
    from puras_common.spend.book import KvSpendBook

    project, job = new_id(), new_id()
    await bus.append(
        UsageRecorded(
            step=1,
            provider="anthropic",
            model="claude/sonnet-4-7",
            upstream_model="claude-x",
            usage=ModelUsage(input_tokens=1000),
            key_prefix="limitedk",
        ),
        project_id=project,
        aggregate=AGG_JOB,
        aggregate_id=job,
        event_id=job_usage_id(job, 1),
    )
    billing = await connect(
        nats_server.address, name="billing", credentials=nats_server.credentials("billing")
    )
    follower = JobEventFollower(billing.js, start_seq=1)
    try:
        # The durable an earlier version read with (created by the operator's identity
        # here: billing may no longer create, pull from or ack on it, only delete it).
        await ensure_durable(
            bus.js,
            EVENTS_STREAM,
            BILLING_USAGE_DURABLE,
            filter_subject=JOB_FILTER,
            ack_wait_s=30,
            max_deliver=-1,
        )
        await delete_legacy_durable(billing.js)
        with pytest.raises(nats.js.errors.NotFoundError):
            await bus.js.consumer_info(EVENTS_STREAM, BILLING_USAGE_DURABLE)
        app = build(
            BillingSettings(env="dev"),
            ledger=NatsLedgerLog(billing),
            jobs=NatsJobLog(billing),
            # The key's spend window: billing settles the call there (Z1).
            spend=KvSpendBook(billing),
        )
        await follower.start()
        [msg] = await follower.next_batch(10, timeout=VIOLATION_WAIT_S)
        seq = msg.metadata.sequence.stream
        again = await fetch_job_event(billing.js, seq)
        assert again.data == msg.data
        env = decode_envelope(msg.data)
        usage = decode_event(env)
        assert isinstance(usage, UsageRecorded)
        call = await app.usage.bill(
            usage,
            usage_id=env.id,
            usage_seq=seq,
            project_id=project,
            job_id=job,
        )
    finally:
        await follower.stop()
        await billing.close()
    assert call.billed_micros == 3600
    # The charge, and (no credit was granted) the announcement of a balance below zero.
    assert await _stored(bus, event_subject(project, AGG_LEDGER, project)) == 2
    assert await _stored(bus, event_subject(project, AGG_JOB, job)) == 2
    window = await KvSpendBook(bus).window(project, "limitedk")
    assert window.day_spent == 3600
