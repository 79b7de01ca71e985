"""Billing's ledger writer and its command entrypoint, built by ``bootstrap.build`` on the
in-memory ledger (no NATS): one writer, guarded appends, a grant recorded once (B4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from billing_fakes import FakeJobLog, FakeLedgerLog
from fake_event_log import FakeEventLog

from puras_billing.app.ledger import InvalidCommand
from puras_billing.bootstrap import build
from puras_billing.entrypoints.commands import handle_command
from puras_billing.settings import BillingSettings
from puras_common.bus.client import Published
from puras_common.events.base import Event
from puras_common.events.commands import GrantCredit, SubmitJob, encode_command
from puras_common.events.subjects import AGG_LEDGER, event_subject
from puras_common.events.types import CreditGranted
from puras_common.ids import new_id
from puras_common.telemetry import tracer

SPANS = tracer("test")


def _ledger(log: FakeEventLog, project_id: str) -> list[tuple[str, Any]]:
    recs = log.on_subject(event_subject(project_id, AGG_LEDGER, project_id))
    return [(r.envelope.id, r.event) for r in recs]


def _grant(project_id: str, micros: int = 500, note: str = "") -> GrantCredit:
    return GrantCredit(grant_id=new_id(), project_id=project_id, micros=micros, note=note)


async def test_a_grant_is_recorded_on_the_projects_ledger() -> None:
    log = FakeEventLog()
    app = build(
        BillingSettings(env="dev"), ledger=FakeLedgerLog(log), jobs=FakeJobLog(FakeEventLog())
    )
    p = new_id()
    cmd = _grant(p, 500, "welcome")
    seq = await app.ledger.grant(cmd, redelivered=False)
    assert _ledger(log, p) == [
        (
            f"grant:{cmd.grant_id}",
            CreditGranted(grant_id=cmd.grant_id, micros=500, note="welcome", balance_micros=500),
        )
    ]
    assert seq == log.last_seq(event_subject(p, AGG_LEDGER, p))


class Contended(FakeLedgerLog):
    """Another writer appends to the project just before each of the first ``races``
    appends: each of those is refused and must be read again."""

    def __init__(self, log: FakeEventLog, races: int) -> None:
        super().__init__(log)
        self.races = races

    async def append(
        self, event: Event, *, project_id: str, event_id: str, expected_last_seq: int
    ) -> Published:
        if self.races:
            self.races -= 1
            last = await self.last_seq(project_id)
            await super().append(
                CreditGranted(grant_id="other", micros=1),
                project_id=project_id,
                event_id=new_id(),
                expected_last_seq=last,
            )
        return await super().append(
            event, project_id=project_id, event_id=event_id, expected_last_seq=expected_last_seq
        )


async def test_a_grant_contended_by_another_writer_lands_after_it() -> None:
    log = FakeEventLog()
    app = build(
        BillingSettings(env="dev"), ledger=Contended(log, races=3), jobs=FakeJobLog(FakeEventLog())
    )
    p = new_id()
    cmd = _grant(p)
    seq = await app.ledger.grant(cmd, redelivered=False)
    events = _ledger(log, p)
    assert len(events) == 4
    assert events[-1][0] == f"grant:{cmd.grant_id}"
    assert seq == log.last_seq(event_subject(p, AGG_LEDGER, p))


async def test_a_redelivered_grant_is_recorded_once_even_after_the_duplicate_window() -> None:
    log = FakeEventLog()
    app = build(
        BillingSettings(env="dev"), ledger=FakeLedgerLog(log), jobs=FakeJobLog(FakeEventLog())
    )
    p = new_id()
    cmd = _grant(p)
    first = await app.ledger.grant(cmd, redelivered=False)
    await app.ledger.grant(_grant(p), redelivered=False)
    log.expire_ids()
    assert await app.ledger.grant(cmd, redelivered=True) == first
    assert [e for e, _ in _ledger(log, p)].count(f"grant:{cmd.grant_id}") == 1


async def test_a_grant_of_nothing_is_refused() -> None:
    log = FakeEventLog()
    app = build(
        BillingSettings(env="dev"), ledger=FakeLedgerLog(log), jobs=FakeJobLog(FakeEventLog())
    )
    p = new_id()
    with pytest.raises(InvalidCommand):
        await app.ledger.grant(_grant(p, micros=0), redelivered=False)
    assert _ledger(log, p) == []


@dataclass
class FakeMsg:
    """What the entrypoint uses of a JetStream message."""

    data: bytes
    num_delivered: int = 1
    subject: str = "cmd.billing.grant"
    headers: dict[str, str] = field(default_factory=dict)
    outcome: list[str] = field(default_factory=list)

    @property
    def metadata(self) -> Any:
        return SimpleNamespace(num_delivered=self.num_delivered)

    async def ack(self) -> None:
        self.outcome.append("ack")

    async def term(self) -> None:
        self.outcome.append("term")


async def test_the_entrypoint_acks_a_grant_once_it_is_stored() -> None:
    log = FakeEventLog()
    app = build(
        BillingSettings(env="dev"), ledger=FakeLedgerLog(log), jobs=FakeJobLog(FakeEventLog())
    )
    p = new_id()
    msg = FakeMsg(encode_command(_grant(p)))
    await handle_command(app.ledger, msg, SPANS)  # type: ignore[arg-type]
    assert msg.outcome == ["ack"]
    assert len(_ledger(log, p)) == 1


async def test_the_entrypoint_drops_what_no_delivery_can_carry_out() -> None:
    log = FakeEventLog()
    app = build(
        BillingSettings(env="dev"), ledger=FakeLedgerLog(log), jobs=FakeJobLog(FakeEventLog())
    )
    p = new_id()
    submit = SubmitJob(
        job_id="j", project_id=p, skill="s", inputs={}, submitted_at=datetime.now(UTC)
    )
    for data in (b"{not json", encode_command(submit), encode_command(_grant(p, micros=-5))):
        msg = FakeMsg(data)
        await handle_command(app.ledger, msg, SPANS)  # type: ignore[arg-type]
        assert msg.outcome == ["term"]
    assert _ledger(log, p) == []


async def test_the_entrypoint_leaves_a_failed_grant_for_redelivery() -> None:
    class Down(FakeLedgerLog):
        async def append(
            self, event: Event, *, project_id: str, event_id: str, expected_last_seq: int
        ) -> Published:
            raise ConnectionError("nats is down")

    app = build(
        BillingSettings(env="dev"), ledger=Down(FakeEventLog()), jobs=FakeJobLog(FakeEventLog())
    )
    msg = FakeMsg(encode_command(_grant(new_id())))
    with pytest.raises(ConnectionError):
        await handle_command(app.ledger, msg, SPANS)  # type: ignore[arg-type]
    assert msg.outcome == []
