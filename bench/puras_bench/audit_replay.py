"""The billing audit's replay speed (SPEC Z3): events/s folded from sequence 1.

On a nats-server (JetStream file store) and a Postgres of its own, this process writes
a log of ``events`` ledger and job events straight to the stream, shaped like billing's
own output: per project a grant; per job a ``job.queued``, billed calls (``job.usage``,
then its ``ledger.charged`` priced by the registry with the balance after it, then its
``job.cost``) and ``job.log`` lines between them. The real projections (billing's ledger,
the gateway's jobs view) fold it into the live tables, then the audit (the same
``run_audit`` as ``puras admin audit``) runs, timed: the replay (reading and folding
the whole log) and the whole audit (COPY of the expected tables and the comparison
included). The audit must come out clean, or the run fails.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from puras_billing.adapters.projection import LedgerProjection
from puras_cli.infra.nats_server import NatsServer, generate_passwords
from puras_cli.infra.postgres import PostgresServer
from puras_common.audit import run_audit
from puras_common.bus import Bus, connect, ensure_streams
from puras_common.events.base import Event, encode_event
from puras_common.events.ids import (
    credit_charged_id,
    credit_granted_id,
    job_charged_id,
    job_log_id,
    job_queued_id,
    job_usage_id,
)
from puras_common.events.subjects import AGG_JOB, AGG_LEDGER, event_subject
from puras_common.events.types import (
    BilledCall,
    CreditCharged,
    CreditGranted,
    JobCharged,
    JobLogged,
    JobQueued,
    ModelUsage,
    UsageRecorded,
)
from puras_common.pricing import CURRENT, DEFAULT_MARGIN_PCT, load_registry
from puras_common.projection import ProjectorRunner
from puras_gateway.adapters.projections import JobsProjection

__all__ = ["measure_audit"]

SLUG = "claude/sonnet-4-6"
CALLS_PER_JOB = 12
LOGS_PER_CALL = 1
"""Per job: 1 queued + 12 x (usage, charge, cost, log) = 49 events."""
PROJECTS = 20


class _Loader:
    """Writes the log: core publishes (the stream stores them; no ack per message), a
    flush every few thousand."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self.count = 0
        self.balance: dict[str, int] = {}
        self._at = datetime(2026, 12, 1, tzinfo=UTC)

    async def put(
        self, project: str, aggregate: str, aggregate_id: str, ev: Event, eid: str
    ) -> None:
        data = encode_event(
            ev, event_id=eid, project_id=project, aggregate_id=aggregate_id, at=self._at
        )
        await self._bus.nc.publish(event_subject(project, aggregate, aggregate_id), data)
        self.count += 1
        if self.count % 5_000 == 0:
            await self._bus.nc.flush()

    async def grant(self, project: str, micros: int) -> None:
        after = self.balance.get(project, 0) + micros
        self.balance[project] = after
        ev = CreditGranted(grant_id=project, micros=micros, balance_micros=after)
        await self.put(project, AGG_LEDGER, project, ev, credit_granted_id(project))

    async def job(self, project: str, n: int) -> None:
        job = f"job-{n:07d}"
        queued = JobQueued(skill="bench", inputs={"n": n}, deployment_id=None, created_at=self._at)
        await self.put(project, AGG_JOB, job, queued, job_queued_id(job))
        registry = load_registry()
        for step in range(1, CALLS_PER_JOB + 1):
            tokens = ModelUsage(input_tokens=500 + n % 97 * step, output_tokens=50 + step)
            usage = UsageRecorded(
                step=step,
                provider="anthropic",
                model=SLUG,
                upstream_model="x",
                usage=tokens,
                skill="bench",
            )
            uid = job_usage_id(job, step)
            await self.put(project, AGG_JOB, job, usage, uid)
            billed = registry.model_cost(SLUG, tokens, margin_pct=DEFAULT_MARGIN_PCT)
            call = BilledCall(
                usage_id=uid,
                job_id=job,
                step=step,
                provider="anthropic",
                model=SLUG,
                input_tokens=tokens.input_tokens,
                output_tokens=tokens.output_tokens,
                billed_micros=billed,
                registry_version=CURRENT,
                margin_pct=DEFAULT_MARGIN_PCT,
                skill="bench",
            )
            after = self.balance[project] - billed
            self.balance[project] = after
            charge = CreditCharged(call=call, balance_micros=after)
            await self.put(project, AGG_LEDGER, project, charge, credit_charged_id(uid))
            await self.put(project, AGG_JOB, job, JobCharged(call=call), job_charged_id(uid))
            for i in range(LOGS_PER_CALL):
                line = JobLogged(stream="stdout", lines=[f"step {step} done"])
                await self.put(project, AGG_JOB, job, line, job_log_id(job, 1, step * 10 + i))


async def _project(dsn: str, bus: Bus, last: int, log: Callable[[str], None]) -> float:
    """Fold the log into the live tables with the real projections; seconds taken."""
    t0 = time.perf_counter()
    for proj in (LedgerProjection(), JobsProjection()):
        runner = ProjectorRunner(dsn, bus.js, proj)
        # Each projection reads its own subjects only: run until its last one.
        sub = f"ev.*.{'ledger' if proj.name == 'ledger' else 'job'}.*"
        until = int((await bus.js.get_last_msg("PURAS_EVENTS", sub)).seq or 0)
        await runner.run(until_seq=until)
        log(f"  projection {proj.name} caught up at {until} of {last}")
    return time.perf_counter() - t0


async def _run(
    events: int, nats: NatsServer, pg: PostgresServer, log: Callable[[str], None]
) -> dict[str, Any]:
    dsn = pg.create_database("audit_bench")
    bus = await connect(nats.url, name="bench-audit")
    try:
        await ensure_streams(bus.js)
        loader = _Loader(bus)
        projects = [f"proj-{i:02d}" for i in range(PROJECTS)]
        t0 = time.perf_counter()
        for p in projects:
            await loader.grant(p, 10**12)
        n = 0
        while loader.count < events:
            await loader.job(projects[n % PROJECTS], n)
            n += 1
        await bus.nc.flush()
        last = await bus.stream_last_seq()
        while last < loader.count:  # the stream stores core publishes asynchronously
            await asyncio.sleep(0.05)
            last = await bus.stream_last_seq()
        load_s = time.perf_counter() - t0
        log(f"  {loader.count} events in the log ({n} jobs) in {load_s:.1f} s")
        project_s = await _project(dsn, bus, last, log)
        conn = await asyncpg.connect(dsn)
        load_before = os.getloadavg()[0]
        cpu0 = time.process_time()
        try:
            report = await run_audit(bus.js, conn, settle_s=10.0)
        finally:
            await conn.close()
        # This process's CPU over the audit's wall time: near 1 when the fold (one
        # thread) is the limit, well under 1 when it waited for the server or the machine.
        cpu_s = time.process_time() - cpu0
        if not report.clean:
            raise RuntimeError("the bench's log did not audit clean:\n" + report.render()[:4000])
        rate = report.events_per_s
        log(f"  audit: {report.events} events read in {report.read_s:.2f} s ({rate}/s)")
        return {
            "events": report.events,
            "jobs": n,
            "projects": PROJECTS,
            "billed_calls": n * CALLS_PER_JOB,
            "seq_range": [report.first_seq, report.last_seq],
            "replay_s": round(report.read_s, 3),
            "replay_events_per_s": report.events_per_s,
            "audit_s": round(report.seconds, 3),
            "audit_events_per_s": int(report.events / report.seconds),
            "load_s": round(load_s, 3),
            "projections_s": round(project_s, 3),
            "clean": report.clean,
            "audit_cpu_s": round(cpu_s, 3),
            "loadavg_before_audit": round(load_before, 2),
        }
    finally:
        await bus.close()


def measure_audit(events: int, log: Callable[[str], None]) -> dict[str, Any]:
    """The audit's speed on a log of about ``events`` events (see the module doc)."""
    work = Path(tempfile.mkdtemp(prefix="puras-bench-audit-"))
    nats = NatsServer(
        store_dir=work / "nats", log_file=work / "nats.log", passwords=generate_passwords()
    ).start()
    try:
        pg_dir = Path(tempfile.mkdtemp(prefix="puras-bench-audit-pg-"))
        pg = PostgresServer(data_dir=pg_dir, fsync=False, log_file=pg_dir / "postgres.log").start()
        try:
            out = asyncio.run(_run(events, nats, pg, log))
        finally:
            pg.cleanup()
    finally:
        nats.cleanup()
    out["stack"] = (
        "nats-server (JetStream file store) and Postgres (fsync off) of its own; the log "
        "written by this process, folded by the real ledger and jobs projections"
    )
    return out


def audit_table(a: dict[str, Any]) -> str:
    """The Markdown rows of (f)."""
    first, last = a["seq_range"]
    replay = f"{a['replay_s']} s, **{a['replay_events_per_s']} events/s**"
    whole = f"{a['audit_s']} s, {a['audit_events_per_s']} events/s"
    return "\n".join(
        [
            "| billing audit (puras admin audit) | value |",
            "|---|---|",
            f"| events replayed (seq {first} to {last}) | {a['events']} |",
            f"| replay from sequence 1 | {replay} |",
            f"| whole audit (COPY + diff of 5 tables) | {whole} |",
            f"| billed calls re-priced | {a['billed_calls']} |",
            f"| CPU of the auditing process | {a['audit_cpu_s']} s |",
            f"| result | {'clean' if a['clean'] else 'DIFFERENCES'} |",
        ]
    )
