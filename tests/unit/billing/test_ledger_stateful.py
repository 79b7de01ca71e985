"""The ledger under random histories (Hypothesis, stateful): grants (first deliveries and
redeliveries), usage events stored on job subjects and delivered to the usage
entrypoint, deliveries duplicated, reordered and concurrent, several billing replicas
(at different margins) over one event log, the duplicate window passing, and billing
dying between storing and acking (before or after any of its appends, the replica then
restarted or not, the message redelivered to any replica).

Driven through the real app (``bootstrap.build`` over the in-memory log) and the real
usage entrypoint. After every step:

- a usage event acked once is charged exactly once on its project's ledger and has
  exactly one ``job.cost``, with the same call; one not acked yet has at most one of
  each, and never a cost without its charge;
- each charge is the registry's price of its usage event (at the margin of the replica
  that charged it, which it names);
- each grant stored once, exactly the grants stored;
- the balance (the fold of ``BalancesView``, each replica's writer, the
  ``balance_micros`` of every entry and of the ledger's last event) is grants minus
  charges;
- announcements of crossing zero alternate, each at a real crossing, naming the entry
  that crossed; once a step ends without a crash, none is owed;
- no float in any stored payload.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from billing_fakes import FakeJobLog, FakeLedgerLog
from fake_event_log import FakeEventLog
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from puras_billing.adapters.job_events import JobEvent
from puras_billing.bootstrap import App, build
from puras_billing.entrypoints.usage import RefusedUsage, handle_job_event
from puras_billing.settings import BillingSettings
from puras_common.bus.client import Published
from puras_common.events.base import Event, encode_event
from puras_common.events.commands import GrantCredit
from puras_common.events.ids import job_usage_id
from puras_common.events.recorded import RecordedEvent
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER, event_subject
from puras_common.events.types import (
    BalanceDepleted,
    BalanceRestored,
    BilledCall,
    CreditCharged,
    CreditGranted,
    JobCharged,
    ModelUsage,
    UsageRecorded,
)
from puras_common.pricing import load_registry
from puras_common.telemetry import tracer
from puras_common.views.ledger import BalancesView

T = TypeVar("T")

REGISTRY = load_registry()
SPANS = tracer("test")
PROJECTS = ("proj-a", "proj-b")
JOBS = ("job-1", "job-2")
"""Per project (job ids are unique across projects, as the ids the gateway gives are)."""
SLUGS = ("claude/sonnet-4-7", "claude/haiku-4-5", "gpt/5-mini", "gemini/2.5-flash")
MARGINS = (20, 20, 50)
"""One billing replica per margin: which one charges a usage event decides its price."""

tokens = st.integers(min_value=0, max_value=20_000)
grants = st.integers(min_value=1, max_value=200_000)
picks = st.integers(min_value=0, max_value=10_000)
replicas = st.integers(min_value=0, max_value=len(MARGINS) - 1)
crash_points = st.integers(min_value=1, max_value=3)
"""Which of the operation's appends billing dies at (charge, announcement, job cost)."""


class BillingDied(Exception):
    """The replica's process ended mid-operation (nothing after it ran, nothing acked)."""


class Faults:
    """One replica's appends, counted, with an optional death at the n-th one (before it
    is stored or after); every call is a scheduling point, so concurrent deliveries
    interleave at each read and append as they would over the network."""

    def __init__(self) -> None:
        self.crash_at: int | None = None
        self.after_store = False
        self.appends = 0

    def arm(self, at: int, *, after_store: bool) -> None:
        self.crash_at, self.after_store, self.appends = at, after_store, 0

    def disarm(self) -> None:
        self.crash_at = None

    async def append(self, store: Callable[[], Awaitable[Published]]) -> Published:
        await asyncio.sleep(0)  # a scheduling point, as a network call is: not a wait
        self.appends += 1
        dies = self.crash_at == self.appends
        if dies and not self.after_store:
            self.crash_at = None
            raise BillingDied(f"before append {self.appends}")
        pub = await store()
        if dies:
            self.crash_at = None
            raise BillingDied(f"after append {self.appends}")
        return pub

    async def read(self, value: Awaitable[T]) -> T:
        await asyncio.sleep(0)
        return await value


class FaultyLedgerLog(FakeLedgerLog):
    def __init__(self, log: FakeEventLog, faults: Faults) -> None:
        super().__init__(log)
        self.faults = faults

    async def last_seq(self, project_id: str) -> int:
        return await self.faults.read(super().last_seq(project_id))

    async def append(
        self, event: Event, *, project_id: str, event_id: str, expected_last_seq: int
    ) -> Published:
        return await self.faults.append(
            lambda: FakeLedgerLog.append(
                self,
                event,
                project_id=project_id,
                event_id=event_id,
                expected_last_seq=expected_last_seq,
            )
        )

    async def events(
        self, project_id: str, *, after_seq: int = 0
    ) -> AsyncIterator[tuple[int, str, Event | None]]:
        await asyncio.sleep(0)
        async for item in super().events(project_id, after_seq=after_seq):
            yield item

    async def find_event(
        self, project_id: str, event_id: str, *, after_seq: int = 0
    ) -> tuple[int, Event | None] | None:
        return await self.faults.read(super().find_event(project_id, event_id, after_seq=after_seq))


class FaultyJobLog(FakeJobLog):
    def __init__(self, log: FakeEventLog, faults: Faults) -> None:
        super().__init__(log)
        self.faults = faults

    async def append(
        self, event: Event, *, project_id: str, job_id: str, event_id: str
    ) -> Published:
        return await self.faults.append(
            lambda: FakeJobLog.append(
                self, event, project_id=project_id, job_id=job_id, event_id=event_id
            )
        )

    async def find(
        self, project_id: str, job_id: str, event_id: str, *, after_seq: int = 0
    ) -> int | None:
        return await self.faults.read(
            super().find(project_id, job_id, event_id, after_seq=after_seq)
        )


@dataclass
class Usage:
    """A usage event as stored on its job's subject, and its deliveries so far."""

    project: str
    usage_id: str
    event: UsageRecorded
    subject: str
    seq: int
    data: bytes
    deliveries: int = 0
    acked: bool = False


@dataclass
class Grant:
    cmd: GrantCredit
    stored: bool
    deliveries: int = 1


@dataclass
class Replica:
    faults: Faults
    app: App
    refused: RefusedUsage


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.log = FakeEventLog()
        self.replicas = [self._replica(i) for i in range(len(MARGINS))]
        self.usages: list[Usage] = []
        self.grants: list[Grant] = []
        self.steps: dict[tuple[str, str], int] = {}
        self.owing: set[str] = set()
        """Projects whose last operation died: an announcement may be owed there until
        the next operation on the project completes (it writes any owed one)."""

    def teardown(self) -> None:
        self.loop.close()

    def _replica(self, i: int) -> Replica:
        faults = Faults()
        app = build(
            BillingSettings(env="dev", margin_pct=MARGINS[i]),
            ledger=FaultyLedgerLog(self.log, faults),
            jobs=FaultyJobLog(self.log, faults),
        )
        return Replica(faults, app, RefusedUsage())

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    # -- operations ----------------------------------------------------------------------

    async def _deliver(self, u: Usage, r: Replica, *, first_again: bool = False) -> None:
        """One attempt at ``u`` by replica ``r`` (``first_again``: a read of the log from
        an earlier position, so it counts as a first attempt)."""
        u.deliveries += 1
        delay = await handle_job_event(
            r.app.usage,
            JobEvent(u.seq, u.data, {}),
            SPANS,
            refused=r.refused,
            retry_max_s=1.0,
            attempt=1 if first_again else u.deliveries,
        )
        assert delay is None, delay
        u.acked = True

    async def _grant(self, g: Grant, r: Replica) -> None:
        await r.app.ledger.grant(g.cmd, redelivered=g.deliveries > 1)
        g.stored = True

    def _crash(
        self, i: int, project: str, op: Callable[[], Coroutine[Any, Any, None]], restart: bool
    ) -> None:
        """Run ``op`` (on ``project``) on replica ``i`` armed to die; the replica's process
        is replaced by a new one (nothing in memory) when ``restart``."""
        try:
            self._run(op())
        except BillingDied:
            self.owing.add(project)
            if restart:
                self.replicas[i] = self._replica(i)
        else:
            self.owing.discard(project)  # fewer appends than the death point: it completed
        finally:
            self.replicas[i].faults.disarm()

    def _unacked(self) -> list[Usage]:
        return [u for u in self.usages if not u.acked]

    def _acked(self) -> list[Usage]:
        return [u for u in self.usages if u.acked]

    # -- rules ---------------------------------------------------------------------------

    @rule(
        project=st.sampled_from(PROJECTS),
        job=st.sampled_from(JOBS),
        slug=st.sampled_from(SLUGS),
        inp=tokens,
        out=tokens,
        cache_read=tokens,
        cache_write=tokens,
    )
    def record_usage(
        self,
        project: str,
        job: str,
        slug: str,
        inp: int,
        out: int,
        cache_read: int,
        cache_write: int,
    ) -> None:
        """The runner stores a usage event on the job's subject (delivered later)."""
        job = f"{project}-{job}"
        step = self.steps.get((project, job), 0) + 1
        self.steps[(project, job)] = step
        ev = UsageRecorded(
            step=step,
            provider="scripted",
            model=slug,
            upstream_model="scripted-1",
            usage=ModelUsage(
                input_tokens=inp,
                output_tokens=out,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
            ),
            skill=f"skill-{job}",
            key_prefix="kp1",
        )
        usage_id = job_usage_id(job, step)
        pub = self.log.append(
            ev, project_id=project, aggregate=AGG_JOB, aggregate_id=job, event_id=usage_id
        )
        [stored] = [r for r in self.log.on_subject(pub.subject) if r.seq == pub.seq]
        data = encode_event(
            ev, event_id=usage_id, project_id=project, aggregate_id=job, at=stored.envelope.at
        )
        self.usages.append(Usage(project, usage_id, ev, pub.subject, pub.seq, data))

    @precondition(lambda self: bool(self._unacked()))
    @rule(pick=picks, replica=replicas)
    def deliver(self, pick: int, replica: int) -> None:
        """Any unacked usage event (reordered: not necessarily the oldest) to any replica."""
        pending = self._unacked()
        u = pending[pick % len(pending)]
        self._run(self._deliver(u, self.replicas[replica]))
        self.owing.discard(u.project)

    @precondition(lambda self: bool(self._acked()))
    @rule(pick=picks, replica=replicas, first_again=st.booleans())
    def deliver_again(self, pick: int, replica: int, first_again: bool) -> None:
        """An acked usage event delivered once more (an ack lost on its way, or a durable
        created anew delivering the log again)."""
        done = self._acked()
        u = done[pick % len(done)]
        self._run(self._deliver(u, self.replicas[replica], first_again=first_again))
        self.owing.discard(u.project)

    @precondition(lambda self: bool(self.usages))
    @rule(
        pick=picks,
        replica=replicas,
        at=crash_points,
        after_store=st.booleans(),
        restart=st.booleans(),
    )
    def deliver_and_die(
        self, pick: int, replica: int, at: int, after_store: bool, restart: bool
    ) -> None:
        """A delivery during which billing dies at its ``at``-th append: not acked, so
        it is redelivered (by the rules above) to any replica."""
        u = self.usages[pick % len(self.usages)]
        r = self.replicas[replica]
        r.faults.arm(at, after_store=after_store)

        async def op() -> None:
            await self._deliver(u, r)  # acked only if it did not die

        self._crash(replica, u.project, op, restart)

    @precondition(lambda self: bool(self.usages))
    @rule(
        picks_=st.lists(picks, min_size=2, max_size=3),
        replicas_=st.lists(replicas, min_size=3, max_size=3),
    )
    def deliver_concurrently(self, picks_: list[int], replicas_: list[int]) -> None:
        """Usage events (maybe one of them twice) delivered at once to replicas (maybe
        one replica twice): their reads and appends interleave."""
        us = [self.usages[p % len(self.usages)] for p in picks_]
        rs = [self.replicas[replicas_[i]] for i in range(len(us))]

        async def both() -> None:
            await asyncio.gather(*(self._deliver(u, r) for u, r in zip(us, rs, strict=True)))

        self._run(both())
        self.owing.difference_update(u.project for u in us)

    @rule(project=st.sampled_from(PROJECTS), micros=grants, replica=replicas)
    def grant(self, project: str, micros: int, replica: int) -> None:
        g = Grant(
            GrantCredit(grant_id=f"g{len(self.grants)}", project_id=project, micros=micros), False
        )
        self.grants.append(g)
        self._run(self._grant(g, self.replicas[replica]))
        self.owing.discard(project)

    @rule(project=st.sampled_from(PROJECTS), replica=replicas)
    def grant_the_debt(self, project: str, replica: int) -> None:
        """A top-up of exactly what the project owes: its balance lands on zero, which
        is depleted (a grant to exactly zero announces no restoration)."""
        owed = -self._run(self.replicas[replica].app.ledger.balance(project))
        if owed <= 0:
            return
        g = Grant(
            GrantCredit(grant_id=f"g{len(self.grants)}", project_id=project, micros=owed), False
        )
        self.grants.append(g)
        self._run(self._grant(g, self.replicas[replica]))
        self.owing.discard(project)

    @precondition(lambda self: bool(self.usages))
    @rule(
        project=st.sampled_from(PROJECTS),
        micros=grants,
        replica=replicas,
        other=replicas,
        pick=picks,
    )
    def grant_while_charging(
        self, project: str, micros: int, replica: int, other: int, pick: int
    ) -> None:
        """A grant and a usage delivery at once, on two replicas (or one)."""
        g = Grant(
            GrantCredit(grant_id=f"g{len(self.grants)}", project_id=project, micros=micros), False
        )
        self.grants.append(g)
        u = self.usages[pick % len(self.usages)]

        async def both() -> None:
            await asyncio.gather(
                self._grant(g, self.replicas[replica]), self._deliver(u, self.replicas[other])
            )

        self._run(both())
        self.owing.difference_update({project, u.project})

    @rule(
        project=st.sampled_from(PROJECTS),
        micros=grants,
        replica=replicas,
        at=st.integers(min_value=1, max_value=2),
        after_store=st.booleans(),
        restart=st.booleans(),
    )
    def grant_and_die(
        self, project: str, micros: int, replica: int, at: int, after_store: bool, restart: bool
    ) -> None:
        """Billing dies at the grant's append or its announcement's: the command is
        redelivered later (``regrant``)."""
        g = Grant(
            GrantCredit(grant_id=f"g{len(self.grants)}", project_id=project, micros=micros), False
        )
        self.grants.append(g)
        r = self.replicas[replica]
        r.faults.arm(at, after_store=after_store)

        async def op() -> None:
            try:
                await self._grant(g, r)
            except BillingDied:
                # Stored unless it died before its first append, the grant's own.
                g.stored = at > 1 or after_store
                raise

        self._crash(replica, project, op, restart)

    @precondition(lambda self: bool(self.grants))
    @rule(pick=picks, replica=replicas)
    def regrant(self, pick: int, replica: int) -> None:
        """A grant command delivered again (its ack lost, or billing died on it)."""
        g = self.grants[pick % len(self.grants)]
        g.deliveries += 1
        self._run(self._grant(g, self.replicas[replica]))
        self.owing.discard(g.cmd.project_id)

    @rule()
    def window_passes(self) -> None:
        """The log's duplicate window forgets every id: only the look-ups stop repeats."""
        self.log.expire_ids()

    # -- invariants ----------------------------------------------------------------------

    def _ledger(self, project: str) -> list[RecordedEvent]:
        return self.log.on_subject(event_subject(project, AGG_LEDGER, project))

    @invariant()
    def each_usage_is_charged_once_at_its_price(self) -> None:
        charges: dict[str, list[BilledCall]] = {}
        for p in PROJECTS:
            for rec in self._ledger(p):
                if isinstance(rec.event, CreditCharged):
                    charges.setdefault(rec.event.call.usage_id, []).append(rec.event.call)
        costs: dict[str, list[BilledCall]] = {}
        for rec in self.log.records():
            if isinstance(rec.event, JobCharged):
                costs.setdefault(rec.event.call.usage_id, []).append(rec.event.call)
        known = {u.usage_id for u in self.usages}
        assert set(charges) <= known
        assert set(costs) <= set(charges), "a job.cost without its charge"
        for u in self.usages:
            charged, cost = charges.get(u.usage_id, []), costs.get(u.usage_id, [])
            if u.acked:
                assert len(charged) == 1, f"{u.usage_id} charged {len(charged)} times"
                assert len(cost) == 1, f"{u.usage_id} has {len(cost)} job.cost events"
            else:
                assert len(charged) <= 1
                assert len(cost) <= 1
            if cost:
                assert cost == charged, "the job's cost differs from the ledger's charge"
            for call in charged:
                ev = u.event
                assert call.margin_pct in MARGINS
                assert call.registry_version == REGISTRY.version
                assert call.billed_micros == REGISTRY.model_cost(
                    ev.model, ev.usage, margin_pct=call.margin_pct
                )
                assert (call.job_id, call.step, call.model, call.skill, call.key_prefix) == (
                    u.subject.rsplit(".", 1)[1],
                    ev.step,
                    ev.model,
                    ev.skill,
                    ev.key_prefix,
                )
                assert (
                    call.input_tokens,
                    call.output_tokens,
                    call.cache_read_tokens,
                    call.cache_write_tokens,
                ) == (
                    ev.usage.input_tokens,
                    ev.usage.output_tokens,
                    ev.usage.cache_read_tokens,
                    ev.usage.cache_write_tokens,
                )
            # On the ledger of the usage event's own project, nowhere else.
            if charged:
                on_own = [
                    r
                    for r in self._ledger(u.project)
                    if isinstance(r.event, CreditCharged) and r.event.call.usage_id == u.usage_id
                ]
                assert len(on_own) == 1

    @invariant()
    def each_grant_is_stored_once(self) -> None:
        for p in PROJECTS:
            stored = [
                (r.event.grant_id, r.event.micros)
                for r in self._ledger(p)
                if isinstance(r.event, CreditGranted)
            ]
            expected = [
                (g.cmd.grant_id, g.cmd.micros)
                for g in self.grants
                if g.cmd.project_id == p and g.stored
            ]
            assert sorted(stored) == sorted(expected), f"{p}: grants stored are not those made"

    @invariant()
    def the_balance_is_grants_minus_charges(self) -> None:
        for p in PROJECTS:
            view = BalancesView()  # one per project: it skips sequences it has passed
            granted = sum(g.cmd.micros for g in self.grants if g.cmd.project_id == p and g.stored)
            charged = 0
            last_stamp: int | None = None
            for rec in self._ledger(p):
                view.apply(rec)
                match rec.event:
                    case CreditGranted():
                        last_stamp = rec.event.balance_micros
                        assert last_stamp == view.balance(p), "a grant stamped with a wrong balance"
                    case CreditCharged():
                        charged += rec.event.call.billed_micros
                        last_stamp = rec.event.balance_micros
                        assert last_stamp == view.balance(p), (
                            "a charge stamped with a wrong balance"
                        )
                    case BalanceDepleted() | BalanceRestored():
                        last_stamp = rec.event.balance_micros
            balance = granted - charged
            assert view.balance(p) == balance
            if last_stamp is not None:
                assert last_stamp == balance, "the ledger's last event tells another balance"
            for r in self.replicas:
                assert self._run(r.app.ledger.balance(p)) == balance
            assert type(view.balance(p)) is int

    @invariant()
    def crossings_alternate_and_are_real(self) -> None:
        for p in PROJECTS:
            balance, depleted, last_entry = 0, False, None
            for rec in self._ledger(p):
                ev = rec.event
                match ev:
                    case CreditGranted():
                        balance += ev.micros
                        last_entry = rec.envelope.id
                    case CreditCharged():
                        balance -= ev.call.billed_micros
                        last_entry = rec.envelope.id
                    case BalanceDepleted():
                        assert not depleted, "depleted announced twice in a row"
                        assert last_entry is not None
                        assert balance <= 0, f"depleted announced at {balance}"
                        assert (ev.balance_micros, ev.cause_id) == (balance, last_entry)
                        depleted = True
                    case BalanceRestored():
                        assert depleted, "restored without a depletion before it"
                        assert balance > 0, f"restored announced at {balance}"
                        assert (ev.balance_micros, ev.cause_id) == (balance, last_entry)
                        depleted = False
            if p not in self.owing and last_entry is not None:
                assert depleted == (balance <= 0), (
                    f"{p}: the crossing to {balance} is owed after a step that completed"
                )

    @invariant()
    def no_float_is_stored(self) -> None:
        def walk(v: object) -> None:
            assert not isinstance(v, float), f"a float in the log: {v!r}"
            if isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)

        for rec in self.log.records():
            walk(msgspec.json.decode(rec.envelope.data))


LedgerMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerStateful = LedgerMachine.TestCase
