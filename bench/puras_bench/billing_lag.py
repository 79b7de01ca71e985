"""Billing lag under load: a usage event stored → its charge stored → the balance updated.

On a dev stack as ``./dev bench`` starts it (nats-server, embedded Postgres with fsync
on, the real billing process with its durable usage consumer and ledger projection),
this process plays the runners: it appends ``job.usage`` events (``UsageRecorded`` on
``ev.<project>.job.<job>``, id ``<job>:usage:<step>``) straight to the event log, spread
over several projects and jobs, and times each one from its stored timestamp (JetStream's,
read by an ordered consumer of ``ev.*.job.*`` in this process; the publish ack comes back
right after it) to

a. its ``ledger.charged`` event (id ``charge:<usage id>``) reaching an ordered consumer
   of ``ev.*.ledger.*`` in this process (the stored timestamp JetStream gives the
   charge is kept too), and
b. the ledger projection committing a checkpoint at or past that charge's sequence, so
   ``project_balances`` holds it: heard as the projectors' ``NOTIFY puras_projection``
   on a LISTEN connection (sent in the transaction that moves the checkpoint).

Phases, one after the other on the same stack:

* floor, billing idle: the same events published on a subject nobody but this process
  reads (``ev.<project>.benchfloor.<job>``) and timed to the same ordered-consumer
  delivery: one bare publish → subscribe hop, which is what billing's lag is made of
  at least once (no other system bills from an event log, so this is the comparison);
* steady rates (50/s and 200/s by default), open loop: each event is published at its
  due time whatever the lag, so a rate billing cannot sustain shows as a growing lag;
* the max charge throughput: billing stopped, a backlog of usage events appended, billing
  started again; charges/s from its first charge to its last (publishing is out of it),
  for two backlog depths (the rate should not depend on the depth);
* a steady run at 80% of the shallower backlog's throughput;
* the hot path of the usage consumer: a backlog with ten non-usage job events
  (``job.log``) before each usage event on the same job subjects. Billing's durable
  consumer reads every job event and acks the others from the envelope's type, so this
  gives the job events/s it keeps up with when the log is mostly not usage.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from puras_bench.ours import OurStack, started_stack
from puras_bench.procstat import CpuMeter
from puras_bench.stats import latency_summary
from puras_common.bus import Bus, connect
from puras_common.events.base import Event, decode_envelope
from puras_common.events.ids import BILLING_USAGE_DURABLE, job_log_id, job_usage_id
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER, EVENTS_STREAM, aggregate_filter
from puras_common.events.types import JobLogged, ModelUsage, UsageRecorded
from puras_common.ids import new_id
from puras_common.projection.runner import NOTIFY_CHANNEL

__all__ = ["BillingPlan", "measure_billing_lag"]

SLUG = "claude/sonnet-4-7"
"""A priced slug of the registry (1000 input + 500 output tokens: 12,600 micros)."""
FLOOR_AGG = "benchfloor"
"""An aggregate no service follows: the floor's events reach this process only."""
LEDGER_CHECKPOINT = "public.ledger"
"""The ledger projection's checkpoint, as its NOTIFY names it (``<schema>.<name>``)."""
CHARGE_PREFIX = "charge:"
_USAGE = UsageRecorded.type
MAX_INFLIGHT_PUBLISHES = 256
"""Publishes awaiting their ack at once (a burst is as fast as the server acks)."""


@dataclass(frozen=True)
class BillingPlan:
    rates: Sequence[int] = (50, 200)
    """Steady usage events/s, each for ``seconds``."""
    seconds: float = 8.0
    backlogs: Sequence[int] = (200, 600)
    """Usage events of each throughput measure."""
    hot_path_usage: int = 250
    """Usage events of the hot-path measure (each after ``noise_per_usage`` others)."""
    noise_per_usage: int = 10
    """Non-usage job events before each usage event in the hot-path measure."""
    projects: int = 4
    jobs_per_project: int = 5
    drain_timeout_s: float = 90.0


@dataclass
class _Sent:
    t_ack: float
    """Wall clock when the publish ack came back (the event is stored by then)."""
    seq: int


@dataclass
class _Seen:
    t_seen: float
    """Wall clock when the ordered consumer handed it to this process."""
    t_stored: float
    """JetStream's stored timestamp of the message (same machine, same clock)."""
    seq: int


class _Arrivals:
    """Event ids seen on a subject filter, with a wait for a set of them."""

    def __init__(self) -> None:
        self.seen: dict[str, _Seen] = {}
        self.repeats = 0
        self._want: set[str] = set()
        self._all_in = asyncio.Event()

    def note(self, event_id: str, seen: _Seen) -> None:
        if event_id in self.seen:
            self.repeats += 1
            return
        self.seen[event_id] = seen
        if self._want:
            self._want.discard(event_id)
            if not self._want:
                self._all_in.set()

    async def wait_for(self, ids: set[str], timeout: float) -> int:
        """Wait (bounded) until every id has arrived; how many are still missing."""
        self._want = ids.difference(self.seen)
        self._all_in.clear()
        if self._want:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_in.wait(), timeout)
        missing = len(self._want)
        self._want = set()
        return missing


class _Checkpoints:
    """The ledger projection's commits: (wall clock heard, checkpoint seq), in order."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.seqs: list[int] = []
        self._target = 0
        self._reached = asyncio.Event()

    def on_notify(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        target, _, seq = str(payload).rpartition(":")
        if target != LEDGER_CHECKPOINT or not seq.isdigit():
            return
        n = int(seq)
        if self.seqs and n <= self.seqs[-1]:
            return
        self.times.append(time.time())
        self.seqs.append(n)
        if n >= self._target:
            self._reached.set()

    def at_or_after(self, seq: int) -> float | None:
        """When the projection first committed ``seq`` or later."""
        i = bisect.bisect_left(self.seqs, seq)
        return self.times[i] if i < len(self.seqs) else None

    async def wait_for(self, seq: int, timeout: float) -> bool:
        self._target = seq
        self._reached.clear()
        if self.seqs and self.seqs[-1] >= seq:
            return True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reached.wait(), timeout)
        return bool(self.seqs) and self.seqs[-1] >= seq


@dataclass
class _Load:
    """Which (project, job) gets the next event, and each job's next step."""

    projects: list[str]
    jobs: list[tuple[str, str]] = field(default_factory=list)
    steps: dict[str, int] = field(default_factory=dict)
    logs: dict[str, int] = field(default_factory=dict)
    i: int = 0

    def next_job(self) -> tuple[str, str]:
        pj = self.jobs[self.i % len(self.jobs)]
        self.i += 1
        return pj

    def fresh_jobs(self, per_project: int) -> None:
        """New job ids for the next phase (each phase's usage ids are its own)."""
        self.jobs = [(p, new_id()) for p in self.projects for _ in range(per_project)]
        self.i = 0


def _usage(step: int) -> UsageRecorded:
    return UsageRecorded(
        step=step,
        provider="anthropic",
        model=SLUG,
        upstream_model="claude-bench",
        usage=ModelUsage(input_tokens=1000, output_tokens=500),
        skill="bench",
    )


class _Publisher:
    def __init__(self, bus: Bus, load: _Load) -> None:
        self._bus = bus
        self._load = load
        self._slots = asyncio.Semaphore(MAX_INFLIGHT_PUBLISHES)
        self._tasks: set[asyncio.Task[None]] = set()
        self.errors: list[str] = []

    def usage(self, into: dict[str, _Sent], *, aggregate: str = AGG_JOB) -> None:
        project, job = self._load.next_job()
        step = self._load.steps.get(job, 0) + 1
        self._load.steps[job] = step
        event_id = job_usage_id(job, step)
        self._spawn(_usage(step), project, aggregate, job, event_id, into)

    def noise(self, n: int) -> None:
        """``n`` ``job.log`` events on the job the next usage event goes to."""
        project, job = self._load.jobs[self._load.i % len(self._load.jobs)]
        for _ in range(n):
            k = self._load.logs.get(job, 0) + 1
            self._load.logs[job] = k
            ev = JobLogged(stream="stdout", lines=[f"line {k} of a bench job"])
            self._spawn(ev, project, AGG_JOB, job, job_log_id(job, 1, k), None)

    def _spawn(
        self,
        ev: Event,
        project: str,
        aggregate: str,
        job: str,
        event_id: str,
        into: dict[str, _Sent] | None,
    ) -> None:
        async def one() -> None:
            async with self._slots:
                try:
                    pub = await self._bus.append(
                        ev,
                        project_id=project,
                        aggregate=aggregate,
                        aggregate_id=job,
                        event_id=event_id,
                        correlation_id=job,
                    )
                except Exception as exc:
                    self.errors.append(f"{event_id}: {exc!r}")
                    return
                if into is not None:
                    into[event_id] = _Sent(time.time(), pub.seq)

        t = asyncio.create_task(one())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Every publish so far acked (or failed)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def paced(self, rate: float, seconds: float, into: dict[str, _Sent]) -> float:
        """``rate`` usage events/s for ``seconds``, open loop; the rate achieved."""
        loop = asyncio.get_running_loop()
        n = max(1, int(rate * seconds))
        t0 = loop.time()
        for i in range(n):
            # Pacing, not waiting for an outcome: the i-th event is due at t0 + i/rate.
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.usage(into)
        await self.flush()
        return round(n / max(loop.time() - t0, 1e-9), 1)


def _lags(
    sent: dict[str, _Sent], usage: _Arrivals, charges: _Arrivals, checkpoints: _Checkpoints
) -> dict[str, Any]:
    # The zero is the usage event's stored timestamp (JetStream's, as the observer of the
    # job subjects got it), not the moment this process handled the publish ack: on a
    # busy machine this loop can resume the publisher after billing has already charged.
    seen: list[float] = []
    stored: list[float] = []
    balance: list[float] = []
    unobserved = 0
    for usage_id in sent:
        c = charges.seen.get(CHARGE_PREFIX + usage_id)
        if c is None:
            continue
        u = usage.seen.get(usage_id)
        if u is None:
            unobserved += 1
            continue
        seen.append(max(0.0, c.t_seen - u.t_stored))
        stored.append(max(0.0, c.t_stored - u.t_stored))
        t = checkpoints.at_or_after(c.seq)
        if t is not None:
            balance.append(max(0.0, t - u.t_stored))
    out: dict[str, Any] = {
        "events": len(sent),
        "charged": len(seen) + unobserved,
        "usage_unobserved": unobserved,
    }
    if seen:
        out["charge_seen_ms"] = latency_summary(seen)
        out["charge_stored_ms"] = latency_summary(stored)
    if balance:
        out["balance_updated_ms"] = latency_summary(balance)
    return out


def _utilization(cpu: CpuMeter) -> float | None:
    """Share of the machine's CPU busy over the block (every process on it)."""
    if not cpu.machine_total_s:
        return None
    return round(cpu.machine_busy_s / cpu.machine_total_s, 3)


def _floor(sent: dict[str, _Sent], floor: _Arrivals) -> dict[str, Any]:
    # From the message's own stored timestamp: its delivery here often comes in before
    # its publish ack is handled (same socket, same loop), so the ack is no zero for it.
    hop = [max(0.0, floor.seen[i].t_seen - floor.seen[i].t_stored) for i in sent if i in floor.seen]
    # How far the publish ack comes back after the stored moment (as this loop sees it).
    ack = [max(0.0, s.t_ack - floor.seen[i].t_stored) for i, s in sent.items() if i in floor.seen]
    return {
        "events": len(sent),
        "seen": len(hop),
        "hop_ms": latency_summary(hop) if hop else None,
        "stored_to_ack_ms": latency_summary(ack) if ack else None,
    }


class _Bench:
    def __init__(self, ours: OurStack, plan: BillingPlan, log: Callable[[str], None]) -> None:
        self.ours = ours
        self.plan = plan
        self.log = log
        self.usage = _Arrivals()
        self.charges = _Arrivals()
        self.floor = _Arrivals()
        self.checkpoints = _Checkpoints()

    def _observer(self, into: _Arrivals) -> Callable[[Msg], Any]:
        async def on_msg(msg: Msg) -> None:
            t = time.time()
            md = msg.metadata
            env = decode_envelope(msg.data)
            if into is self.usage and env.type != _USAGE:
                return  # the job subjects' other events (job.cost, the hot path's logs)
            into.note(env.id, _Seen(t, md.timestamp.timestamp(), int(md.sequence.stream)))

        return on_msg

    async def run(self, projects: list[str]) -> dict[str, Any]:
        p = self.plan
        bus = await connect(self.ours.stack.nats_url, name="bench-billing")
        pg = await asyncpg.connect(self.ours.stack.database_url)
        subs = []
        try:
            await pg.add_listener(NOTIFY_CHANNEL, self.checkpoints.on_notify)
            for flt, into in (
                (aggregate_filter(AGG_JOB), self.usage),
                (aggregate_filter(AGG_LEDGER), self.charges),
                (aggregate_filter(FLOOR_AGG), self.floor),
            ):
                subs.append(
                    await bus.js.subscribe(
                        flt,
                        cb=self._observer(into),
                        ordered_consumer=True,
                        deliver_policy=DeliverPolicy.NEW,
                        stream=EVENTS_STREAM,
                    )
                )
            load = _Load(projects)
            pub = _Publisher(bus, load)
            out: dict[str, Any] = {
                "plan": {
                    "rates": list(p.rates),
                    "seconds": p.seconds,
                    "backlogs": list(p.backlogs),
                    "hot_path_usage": p.hot_path_usage,
                    "noise_per_usage": p.noise_per_usage,
                    "projects": p.projects,
                    "jobs_per_project": p.jobs_per_project,
                    "slug": SLUG,
                }
            }

            load.fresh_jobs(p.jobs_per_project)
            self.log("billing lag: warm-up, 100 usage events at 50/s")
            warm: dict[str, _Sent] = {}
            await pub.paced(50, 2.0, warm)
            await self._settle(warm)

            out["floor"] = {}
            for rate in p.rates:
                self.log(f"    floor, billing idle: {rate} events/s for {p.seconds:g}s (bare hop)")
                sent: dict[str, _Sent] = {}
                load.fresh_jobs(p.jobs_per_project)
                achieved = await self._paced_floor(pub, rate, sent)
                missing = await self.floor.wait_for(set(sent), p.drain_timeout_s)
                f = _floor(sent, self.floor)
                f.update(rate=rate, achieved_per_s=achieved, missing=missing)
                out["floor"][str(rate)] = f
                if f["hop_ms"]:
                    self.log(f"        hop p50 {f['hop_ms']['p50_ms']} p99 {f['hop_ms']['p99_ms']}")

            out["steady"] = {}
            for rate in p.rates:
                out["steady"][str(rate)] = await self._steady(pub, load, rate)

            out["throughput"] = {}
            for depth in p.backlogs:
                self.log(
                    f"    max charge throughput: billing stopped, {depth} usage events, started"
                )
                out["throughput"][str(depth)] = await self._backlog(pub, load, depth, noise=0)
            first = out["throughput"][str(p.backlogs[0])] if p.backlogs else {}
            top = first.get("charges_per_s") or 0
            sustain = int(top * 0.8)
            # Below the drain rate, the rate billing should keep up with (with the given
            # rates it shows where the lag starts to build).
            if sustain > 0 and sustain not in p.rates:
                out["steady"][str(sustain)] = await self._steady(pub, load, sustain)
                out["steady"][str(sustain)]["of_max"] = 0.8

            self.log(
                f"    hot path: {p.hot_path_usage} usage events with {p.noise_per_usage} job.log "
                "events "
                "before each, billing stopped, then started"
            )
            out["hot_path"] = await self._backlog(
                pub, load, p.hot_path_usage, noise=p.noise_per_usage
            )
            out["duplicate_charges_seen"] = self.charges.repeats
            out["publish_errors"] = pub.errors[:10]
            return out
        finally:
            for s in subs:
                with contextlib.suppress(Exception):
                    await s.unsubscribe()
            with contextlib.suppress(Exception):
                await pg.close()
            await bus.close()

    async def _paced_floor(self, pub: _Publisher, rate: int, sent: dict[str, _Sent]) -> float:
        loop = asyncio.get_running_loop()
        n = max(1, int(rate * self.plan.seconds))
        t0 = loop.time()
        for i in range(n):
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            pub.usage(sent, aggregate=FLOOR_AGG)
        await pub.flush()
        return round(n / max(loop.time() - t0, 1e-9), 1)

    async def _settle(self, sent: dict[str, _Sent]) -> tuple[int, bool]:
        """Wait for every charge of ``sent`` and the checkpoint past the last of them."""
        want = {CHARGE_PREFIX + i for i in sent}
        missing = await self.charges.wait_for(want, self.plan.drain_timeout_s)
        last = max((self.charges.seen[w].seq for w in want if w in self.charges.seen), default=0)
        projected = await self.checkpoints.wait_for(last, self.plan.drain_timeout_s)
        return missing, projected

    def _cpu_roots(self) -> dict[str, int]:
        return {
            k: v
            for k, v in self.ours.pids().items()
            if k in ("billing", "nats-server", "postgres", "gateway", "scheduler")
        }

    async def _steady(self, pub: _Publisher, load: _Load, rate: int) -> dict[str, Any]:
        p = self.plan
        self.log(f"    steady: {rate} usage events/s for {p.seconds:g}s")
        load.fresh_jobs(p.jobs_per_project)
        sent: dict[str, _Sent] = {}
        t_self = os.times()
        with CpuMeter(self._cpu_roots()) as cpu:
            achieved = await pub.paced(rate, p.seconds, sent)
            missing, projected = await self._settle(sent)
        t_after = os.times()
        mine = (t_after.user - t_self.user) + (t_after.system - t_self.system)
        r = _lags(sent, self.usage, self.charges, self.checkpoints)
        r.update(rate=rate, achieved_per_s=achieved, missing=missing, projected=projected)
        per = {k: round(v * 1000 / len(sent), 3) for k, v in cpu.used.items()}
        per["bench client"] = round(mine * 1000 / len(sent), 3)
        r["cpu_ms_per_usage"] = per
        r["cpu_ms_per_usage_total"] = round(sum(per.values()), 3)
        r["machine_utilization"] = _utilization(cpu)
        if "charge_seen_ms" in r:
            a, b = r["charge_seen_ms"], r.get("balance_updated_ms") or {}
            self.log(
                f"        charge p50 {a['p50_ms']} p99 {a['p99_ms']} max {a['max_ms']}; "
                f"balance p50 {b.get('p50_ms')} p99 {b.get('p99_ms')} max {b.get('max_ms')}"
            )
        return r

    async def _backlog(
        self, pub: _Publisher, load: _Load, depth: int, *, noise: int
    ) -> dict[str, Any]:
        p = self.plan
        stack = self.ours.stack
        load.fresh_jobs(p.jobs_per_project)
        await asyncio.to_thread(stack.kill_service, "billing", signal.SIGTERM)
        sent: dict[str, _Sent] = {}
        t0 = time.monotonic()
        for _ in range(depth):
            if noise:
                pub.noise(noise)
            pub.usage(sent)
        await pub.flush()
        publish_s = time.monotonic() - t0
        events = depth * (noise + 1)
        t_start = time.time()
        await asyncio.to_thread(stack.start_service, "billing")
        t_ready = time.time()
        # The new billing's pid is known from here: CPU is metered from its readiness on.
        with CpuMeter(self._cpu_roots()) as cpu:
            missing, projected = await self._settle(sent)
        t_end = time.time()
        got = sorted(
            self.charges.seen[CHARGE_PREFIX + i].t_seen
            for i in sent
            if CHARGE_PREFIX + i in self.charges.seen
        )
        r: dict[str, Any] = {
            "usage_events": depth,
            "job_events": events,
            "noise_per_usage": noise,
            "publish_s": round(publish_s, 3),
            "billing_start_to_ready_s": round(t_ready - t_start, 3),
            "missing": missing,
            "projected": projected,
            "cpu_s_after_ready": cpu.used,
            "machine_utilization_after_ready": _utilization(cpu),
        }
        if len(got) > 1:
            span = got[-1] - got[0]
            r["drain_s"] = round(span, 3)
            r["charges_per_s"] = round((len(got) - 1) / span, 1) if span > 0 else None
            r["job_events_per_s"] = (
                round((len(got) - 1) * (noise + 1) / span, 1) if span > 0 else None
            )
            last = self.checkpoints.at_or_after(
                max(
                    self.charges.seen[CHARGE_PREFIX + i].seq
                    for i in sent
                    if CHARGE_PREFIX + i in self.charges.seen
                )
            )
            if last is not None:
                r["balance_after_last_charge_ms"] = round((last - got[-1]) * 1000, 3)
            r["ready_to_first_charge_s"] = round(got[0] - t_ready, 3)
            after = sum(1 for t in got if t >= t_ready)
            billing_cpu = cpu.used.get("billing", 0.0)
            if after:
                r["billing_cpu_ms_per_charge_after_ready"] = round(billing_cpu * 1000 / after, 3)
            r["billing_cpu_share_of_one_core"] = round(billing_cpu / max(t_end - t_ready, 1e-9), 3)
        info = await self._consumer_state()
        r["consumer_after"] = info
        self.log(
            f"        {r.get('charges_per_s')} charges/s, {r.get('job_events_per_s')} job events/s "
            f"(drain {r.get('drain_s')}s, publishing took {r['publish_s']}s)"
        )
        return r

    async def _consumer_state(self) -> dict[str, int]:
        bus = await connect(self.ours.stack.nats_url, name="bench-billing-info")
        try:
            try:
                info = await bus.js.consumer_info(EVENTS_STREAM, BILLING_USAGE_DURABLE)
            except NotFoundError:
                return {}  # billing reads from its checkpoint (the durable is gone)
            return {
                "num_pending": int(info.num_pending or 0),
                "num_ack_pending": int(info.num_ack_pending or 0),
                "num_redelivered": int(info.num_redelivered or 0),
            }
        finally:
            await bus.close()


def _billing_log_counts(path: Path) -> dict[str, int]:
    """What billing's own log says of the run: charges, and deliveries given up on (a
    ledger guard lost ``APPEND_ATTEMPTS`` times in a row: redelivered after the ack wait)."""
    counts = {"usage_charged": 0, "gave_up_ledger_kept_moving": 0, "failed_deliveries": 0}
    with contextlib.suppress(OSError), path.open(errors="replace") as f:
        for line in f:
            if '"usage charged"' in line:
                counts["usage_charged"] += 1
            elif "will be redelivered" in line:
                counts["failed_deliveries"] += 1
                if "kept moving" in line:
                    counts["gave_up_ledger_kept_moving"] += 1
    return counts


def measure_billing_lag(
    plan: BillingPlan, log: Callable[[str], None], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Every phase above on a stack of its own; the summaries (see the module doc)."""
    with started_stack(env or {}, log) as ours:
        projects = [ours.project_id]
        for i in range(1, plan.projects):
            projects.append(ours.stack.bootstrap_project(name=f"bench-{i}", usd=1000).project_id)
        out = asyncio.run(_Bench(ours, plan, log).run(projects))
        out["billing_log"] = _billing_log_counts(ours.stack.logs_dir / "billing.log")
        out["stack"] = (
            "puras dev stack: nats-server (JetStream file store), embedded Postgres (fsync "
            "on), gateway/scheduler/runner/billing/drive; the usage events from this process"
        )
        return out
