"""The results table (Markdown, so it can be pasted into docs/benchmarks.md as printed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from puras_billing.app.ledger import APPEND_ATTEMPTS

__all__ = [
    "AGENT_STEP_GOAL_MS",
    "LATENCY_TARGET",
    "THROUGHPUT_TARGET",
    "Row",
    "agent_table",
    "billing_table",
    "detail_tables",
    "memory_line",
    "memory_rows",
    "memory_table",
    "rows",
    "sse_rows",
    "sse_table",
    "table",
]

LATENCY_TARGET = 0.7
"""Our sync no-op p50 at most this times Celery-behind-FastAPI's."""
TIMES = "\u00d7"
"""The multiplication sign of the ratios."""
THROUGHPUT_TARGET = 1.5
"""Our sync jobs/s with 16 clients at least this times Celery-behind-FastAPI's."""


@dataclass(frozen=True)
class Row:
    measure: str
    ours: float | None
    peer: float | None
    unit: str
    target: str = ""
    """``"<=0.7"`` / ``">=1.5"`` (ratio ours/peer), or empty for a row without a target."""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.peer is None or self.peer == 0:
            return None
        return self.ours / self.peer

    @property
    def met(self) -> str:
        if not self.target:
            return ""
        r = self.ratio
        if r is None:
            return "n/a"
        limit = float(self.target[2:])
        ok = r <= limit if self.target.startswith("<=") else r >= limit
        return "yes" if ok else "NO"


def _get(d: dict[str, Any] | None, *path: str) -> float | None:
    cur: Any = d
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return None
        cur = cur[p]
    return float(cur) if isinstance(cur, int | float) else None


def rows(res: dict[str, Any]) -> list[Row]:
    o = res.get("ours", {})
    p = res.get("peer", {}) if res.get("peer", {}).get("ok") else {}
    clients = res["config"]["clients"]
    out = [
        Row(
            "sync no-op job, 1 client: p50",
            _get(o, "sync_seq", "p50_ms"),
            _get(p, "run_seq", "p50_ms"),
            "ms",
            f"<={LATENCY_TARGET}",
        ),
        Row(
            "sync no-op job, 1 client: p90",
            _get(o, "sync_seq", "p90_ms"),
            _get(p, "run_seq", "p90_ms"),
            "ms",
        ),
        Row(
            "sync no-op job, 1 client: p99",
            _get(o, "sync_seq", "p99_ms"),
            _get(p, "run_seq", "p99_ms"),
            "ms",
        ),
        Row(
            "sync no-op job, 1 client: mean",
            _get(o, "sync_seq", "mean_ms"),
            _get(p, "run_seq", "mean_ms"),
            "ms",
        ),
        Row(
            "HTTP floor, 1 client: p50",
            _get(o, "http_floor_seq", "p50_ms"),
            _get(p, "echo_seq", "p50_ms"),
            "ms",
            note="ours: GET /healthz; Celery's: POST /echo (FastAPI, no task)",
        ),
        Row(
            f"sync jobs/s, {clients} clients",
            _get(o, "sync_throughput", "jobs_per_s"),
            _get(p, "run_throughput", "jobs_per_s"),
            "jobs/s",
            f">={THROUGHPUT_TARGET}",
        ),
        Row(
            f"sync job p50 under load, {clients} clients",
            _get(o, "sync_throughput", "latency_under_load", "p50_ms"),
            _get(p, "run_throughput", "latency_under_load", "p50_ms"),
            "ms",
        ),
        Row(
            f"async submit jobs/s, {clients} clients (until all ended)",
            _get(o, "async_throughput", "jobs_per_s"),
            None,
            "jobs/s",
            note="ours only: POST without wait, completion from the event log",
        ),
        Row(
            "Celery without HTTP, 1 client: p50",
            None,
            _get(p, "celery_direct", "seq", "p50_ms"),
            "ms",
            note="context",
        ),
        Row(
            f"Celery without HTTP, {clients} threads: jobs/s",
            None,
            _get(p, "celery_direct", "throughput", "jobs_per_s"),
            "jobs/s",
            note="context",
        ),
    ]
    iso = res.get("isolation") or {}
    if "isolated_job_us" in iso:
        out.append(
            Row(
                "runner: isolated job (fork-per-job), p50",
                iso["isolated_job_us"]["p50"] / 1000,
                None,
                "ms",
                note=f"in-process call p50 {iso['in_process_call_us']['p50']} us; "
                f"overhead p50 {iso['overhead_us_p50']} us",
            )
        )
    return out + memory_rows(res) + sse_rows(res)


def memory_rows(res: dict[str, Any]) -> list[Row]:
    """The whole stacks' memory side by side, and the idle warm template against its goal."""
    om = res.get("ours", {}).get("memory") or {}
    pm = (res.get("peer", {}) if res.get("peer", {}).get("ok") else {}).get("memory") or {}
    if not om and not pm:
        return []
    out = [
        Row(
            "memory, whole stack at idle: USS",
            _get(om, "idle", "total", "uss_mib", "mean"),
            _get(pm, "idle", "total", "uss_mib", "mean"),
            "MiB",
            note="private pages of every process",
        ),
        Row(
            "memory, whole stack at idle: PSS",
            _get(om, "idle", "total", "pss_mib", "mean"),
            _get(pm, "idle", "total", "pss_mib", "mean"),
            "MiB",
            note="shared pages split between their processes",
        ),
        Row(
            f"memory, whole stack under {res['config']['clients']}-client sync load: PSS peak",
            _get(om, "load", "total", "pss_mib", "peak"),
            _get(pm, "load", "total", "pss_mib", "peak"),
            "MiB",
        ),
    ]
    t = om.get("idle_template")
    if t:
        met = "met" if t["met"] else "NOT met"
        out.append(
            Row(
                "memory: idle warm template USS (the template and its spares)",
                t["uss_mib"],
                None,
                "MiB",
                note=f"goal ≤ {t['goal_uss_mib']:g} MiB: {met}; {t['procs']} processes, "
                f"PSS {t['pss_mib']:.1f} MiB",
            )
        )
    return out


SSE_SYNC_UNCHANGED = 1.1
"""The sync p50 with the streams open at most this times the one without: unchanged."""


def sse_rows(res: dict[str, Any]) -> list[Row]:
    """The event streams' two measures (ours only: the peer has no job event stream)."""
    sse = res.get("ours", {}).get("sse") or {}
    out: list[Row] = []
    first = sse.get("first")
    if first:
        f = first["first_event"]
        met = "met" if f["p50_ms"] <= first["goal_p50_ms"] else "NOT met"
        out.append(
            Row(
                "SSE: POST /v1/jobs?stream=true to the first data frame, p50",
                f["p50_ms"],
                None,
                "ms",
                note=f"goal ≤ {first['goal_p50_ms']:g} ms: {met}; p99 {f['p99_ms']:.2f} ms",
            )
        )
    held = sse.get("held")
    if held:
        ratio = held.get("sync_p50_ratio")
        met = (
            "met"
            if held["opened"] >= held["streams_goal"]
            and ratio is not None
            and ratio <= SSE_SYNC_UNCHANGED
            else "NOT met"
        )
        procs = held.get("gateway_processes", 1)
        out.append(
            Row(
                "SSE: streams of live jobs one gateway holds at once"
                + (f" ({procs} gateway processes)" if procs > 1 else ""),
                held["opened"],
                None,
                "streams",
                note=f"goal ≥ {held['streams_goal']} with the sync p50 unchanged "
                f"(≤ {SSE_SYNC_UNCHANGED:g}{TIMES}): {met}; sync p50 "
                f"{held['sync_with']['p50_ms']:.2f} ms with them, "
                f"{held['sync_without']['p50_ms']:.2f} ms without",
            )
        )
    return out


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "—"
    if unit in ("jobs/s", "streams"):
        return f"{v:.0f}"
    if unit == "MiB":
        return f"{v:.1f}"
    return f"{v:.2f}" if v < 100 else f"{v:.0f}"


def table(res: dict[str, Any]) -> str:
    lines = [
        "| measure | Puras | Celery+Redis | Puras/Celery | target | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows(res):
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}{TIMES}"
        target = {"": "", "<=": "≤ ", ">=": "≥ "}[r.target[:2]] + (
            r.target[2:] + TIMES if r.target else ""
        )
        measure = f"{r.measure} ({r.unit})" + (f" — {r.note}" if r.note else "")
        lines.append(
            f"| {measure} | {_fmt(r.ours, r.unit)} | {_fmt(r.peer, r.unit)} | {ratio} | "
            f"{target} | {r.met} |"
        )
    return "\n".join(lines)


def detail_tables(res: dict[str, Any]) -> str:
    """Where one sync job's time goes (event timestamps) and CPU per job per process."""
    out: list[str] = []
    hops = res.get("ours", {}).get("hops")
    if hops and hops.get("hops"):
        out += [
            "",
            f"Where one sync job's time goes (p50 over {hops['n']} sequential jobs):",
            "",
            "| hop | p50 ms | mean ms | p90 ms | what |",
            "|---|---:|---:|---:|---|",
        ]
        for name, h in hops["hops"].items():
            nums = f"{h['p50_ms']:.3f} | {h['mean_ms']:.3f} | {h['p90_ms']:.3f}"
            out.append(f"| {name} | {nums} | {h['what']} |")
        out.append(
            f"| sum of p50s | {hops['sum_of_p50_ms']:.3f} | | | end-to-end p50 "
            f"{hops['end_to_end']['p50_ms']:.3f} ms |"
        )
    cpu_blocks = [
        ("Puras, sequential", res.get("ours", {}).get("cpu_sync_seq")),
        ("Puras, sync 16 clients", res.get("ours", {}).get("cpu_sync_throughput")),
        ("Puras, async 16 clients", res.get("ours", {}).get("cpu_async_throughput")),
        ("Celery, sequential /run", (res.get("peer") or {}).get("cpu_run_seq")),
        ("Celery, /run 16 clients", (res.get("peer") or {}).get("cpu_run_throughput")),
    ]
    cpu_blocks = [(k, v) for k, v in cpu_blocks if v]
    if cpu_blocks:
        out += ["", "CPU ms per job, by process (from /proc, process and its children):", ""]
        for label, cpu in cpu_blocks:
            kids = cpu.get("children_per_job_ms", {})

            def one(k: str, v: float, kids: dict[str, float] = kids) -> str:
                c = kids.get(k, 0.0)
                return f"{k} {v:.2f}" + (f" [children {c:.2f}]" if c >= 0.005 else "")

            parts = ", ".join(
                one(k, v)
                for k, v in sorted(cpu["per_job_ms"].items(), key=lambda kv: -kv[1])
                if v >= 0.005
            )
            busy = cpu.get("machine_busy_per_job_ms")
            util = cpu.get("machine_utilization")
            other = cpu.get("other_load")
            extra = (
                f"; whole machine busy {busy:.2f} ms/job, {util:.0%} utilized"
                + (f", other load {other:.0%}" if other is not None else "")
                if busy is not None and util is not None
                else ""
            )
            out.append(f"- {label}: total {cpu['total_per_job_ms']:.2f} ({parts}){extra}")
    prof = res.get("ours", {}).get("profile")
    if prof and "error" not in prof:
        out += [
            "",
            f"py-spy, {prof['seconds']}s under {prof.get('load', 'sync load')} "
            f"({prof['jobs']} jobs): Python-level share, inclusive (waits dropped):",
            "",
        ]
        for name in ("gateway", "scheduler", "runner"):
            p = prof.get(name) or {}
            if "top_inclusive" not in p:
                out.append(f"- {name}: {p.get('error', 'no profile')}")
                continue
            # The frames every sample shares (main, the loop) say nothing: skip them.
            rows = [r for r in p["top_inclusive"] if r["pct"] < 95][:10]
            parts = "; ".join(f"{r['fn']} {r['pct']:.0f}%" for r in rows)
            out.append(f"- {name} ({p['python_ms_per_job']:.2f} ms/job sampled): {parts}")
    return "\n".join(out)


AGENT_STEP_GOAL_MS = 3.0
"""The agent loop's own time per step with an instant model, the tool's child included."""


def agent_table(res: dict[str, Any]) -> str:
    """The agent loop's measures (``./dev bench --agent``), or an empty string."""
    a = res.get("agent") or {}
    loop = a.get("loop") or {}
    sub = a.get("submit") or {}
    if not loop and not sub:
        return ""
    lines = [
        "| measure (agent loop) | p50 (ms) | p95 (ms) | goal | met |",
        "|---|---:|---:|---|---|",
    ]
    what = {
        "media": "`media` (answers at once, no sandbox)",
        "bash": "`bash` `true` in the job sandbox",
    }
    for log_name, tools in (loop.get("logs") or {}).items():
        for tool, r in tools.items():
            s = r.get("step_ms")
            if not s:
                continue
            met = "yes" if s["p50_ms"] <= AGENT_STEP_GOAL_MS else "NO"
            lines.append(
                f"| per step, {what.get(tool, tool)}, {log_name} job log | {s['p50_ms']:.3f} | "
                f"{s['p95_ms']:.3f} | ≤ {AGENT_STEP_GOAL_MS:g} | {met} |"
            )
            c = r.get("bash_call_in_loop_ms")
            if c:
                lines.append(
                    f"| of which the bash call (the sandbox's tool host, its child), {log_name} "
                    f"job log | {c['p50_ms']:.3f} | {c['p95_ms']:.3f} |  |  |"
                )
            f = r.get("first_tool_step_ms")
            if tool == "bash" and f:
                lines.append(
                    f"| first bash step of a run (starts the run's sandbox), {log_name} job log "
                    f"| {f['p50_ms']:.3f} | {f['p95_ms']:.3f} |  |  |"
                )
    b = loop.get("bash_call_alone_ms")
    if b:
        lines.append(
            f"| `bash` `true` through the sandbox session alone (no loop) | {b['p50_ms']:.3f} | "
            f"{b['p95_ms']:.3f} |  |  |"
        )
    for key, label in (
        ("submit_to_first_model_request_ms", "submit (POST /v1/jobs) → first model request"),
        ("agent_job_round_trip_ms", "agent job, sync, one set_output step: round trip"),
        ("deterministic_noop_round_trip_ms", "deterministic no-op job, sync, same stack"),
    ):
        s = sub.get(key)
        if s:
            lines.append(f"| {label} | {s['p50_ms']:.2f} | {s['p95_ms']:.2f} |  |  |")
    return "\n".join(lines)


def billing_table(res: dict[str, Any]) -> str:
    """The billing lag (``./dev bench --billing-only``, or in the full run), or ''."""
    b = res.get("billing") or {}
    if not b:
        return ""
    lines = [
        "| billing lag (usage event stored → …) | rate (/s) | p50 (ms) | p99 (ms) | max (ms) "
        "| charged |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rate, f in (b.get("floor") or {}).items():
        h = f.get("hop_ms")
        if h:
            lines.append(
                f"| floor, billing idle: bare publish → ordered-consumer delivery | {rate} | "
                f"{h['p50_ms']:.2f} | {h['p99_ms']:.2f} | {h['max_ms']:.2f} | — |"
            )
    for rate, s in (b.get("steady") or {}).items():
        of_max = " (80% of the max)" if s.get("of_max") else ""
        done = f"{s.get('charged')}/{s.get('events')}"
        for key, label in (
            ("charge_seen_ms", "its ledger.charged delivered here"),
            ("balance_updated_ms", "the balance committed (projection checkpoint)"),
        ):
            m = s.get(key)
            if m:
                lines.append(
                    f"| {label}{of_max} | {rate} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
                    f"{m['max_ms']:.2f} | {done} |"
                )
    out = "\n".join(lines)
    rows = []
    drains = [(t, "usage events only") for t in (b.get("throughput") or {}).values()]
    drains.append((b.get("hot_path") or {}, "ten job.log events before each usage event"))
    for t, label in drains:
        if t.get("charges_per_s"):
            rows.append(
                f"| backlog of {t['usage_events']} usage events, {label} | "
                f"{t['charges_per_s']:.0f} | {t['job_events_per_s']:.0f} | "
                f"{t.get('billing_cpu_share_of_one_core', 0):.2f} | {t['missing']} |"
            )
    if rows:
        out += (
            "\n\n| billing drain (billing stopped, backlog appended, billing started) "
            "| charges/s | job events/s | billing's CPU (cores) | not charged |\n"
            "|---|---:|---:|---:|---:|\n" + "\n".join(rows)
        )
    bl = b.get("billing_log") or {}
    if bl:
        out += (
            f"\n\nbilling's log: {bl.get('usage_charged')} charges; "
            f"{bl.get('gave_up_ledger_kept_moving')} deliveries given up after losing the "
            f"ledger's guard {APPEND_ATTEMPTS} times (each redelivered after the ack wait), "
            f"{bl.get('failed_deliveries')} failed deliveries in all"
        )
    return out


def memory_line(summary: dict[str, Any], stat: str = "mean") -> str:
    """One line for the progress log: the whole stack's USS, PSS and RSS."""
    t = summary.get("total") or {}
    if not t:
        return "no sample"
    return (
        f"USS {t['uss_mib'][stat]:.1f} MiB, PSS {t['pss_mib'][stat]:.1f}, "
        f"RSS {t['rss_mib'][stat]:.1f} ({t['procs']} processes)"
    )


def memory_table(res: dict[str, Any]) -> str:
    """Memory per service (process and descendants) of both stacks, at idle and under
    the sync load, or an empty string."""
    blocks = [
        ("Puras", res.get("ours", {}).get("memory") or {}),
        ("Celery+Redis", (res.get("peer") or {}).get("memory") or {}),
    ]
    blocks = [(k, v) for k, v in blocks if v.get("idle") or v.get("load")]
    if not blocks:
        return ""
    clients = res["config"]["clients"]
    lines = [
        "Memory by service (MiB; a service is its process and its descendants; USS: its "
        "private pages, PSS: shared pages split between the processes that map them, RSS: "
        f"every page mapped; idle after the warm-up, load: sampled under the {clients}-client "
        "sync load):",
        "",
        "| service | idle USS | idle PSS | idle RSS | load USS mean | load USS peak "
        "| load PSS peak | load RSS peak | processes idle/load |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(g: dict[str, Any] | None, fig: str, stat: str) -> str:
        if not g:
            return "—"
        return f"{g[f'{fig}_mib'][stat]:.1f}"

    for system, mem in blocks:
        idle = mem.get("idle") or {}
        load = mem.get("load") or {}
        names = list(idle.get("groups", {}))
        names += [n for n in load.get("groups", {}) if n not in names]
        rows_ = [
            (f"{system}: {n}", idle.get("groups", {}).get(n), load.get("groups", {}).get(n))
            for n in names
        ]
        rows_.append((f"**{system}, all**", idle.get("total"), load.get("total")))
        for label, i, ld in rows_:
            procs = f"{i['procs'] if i else '—'}/{ld['procs'] if ld else '—'}"
            lines.append(
                f"| {label} | {cell(i, 'uss', 'mean')} | {cell(i, 'pss', 'mean')} | "
                f"{cell(i, 'rss', 'mean')} | {cell(ld, 'uss', 'mean')} | "
                f"{cell(ld, 'uss', 'peak')} | {cell(ld, 'pss', 'peak')} | "
                f"{cell(ld, 'rss', 'peak')} | {procs} |"
            )
    samples = [f"{s}: {m['load']['samples']}" for s, m in blocks if m.get("load")]
    if samples:
        lines.append("")
        lines.append(f"Samples under load: {', '.join(samples)}.")
    return "\n".join(lines)


def _top(per: dict[str, float]) -> str:
    return ", ".join(
        f"{k} {v:.2f}" for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 0.05
    )


def sse_table(res: dict[str, Any]) -> str:
    """The event streams' measures in full, or an empty string."""
    sse = res.get("ours", {}).get("sse") or {}
    if not sse:
        return ""
    lines = ["| measure (job event streams) | value | goal |", "|---|---:|---|"]
    first = sse.get("first")
    if first:
        f, e = first["first_event"], first["end_frame"]
        lines += [
            f"| stream submit → first data frame, {first['n']} sequential: p50 (ms) | "
            f"{f['p50_ms']:.2f} | ≤ {first['goal_p50_ms']:g} |",
            f"| stream submit → first data frame: p90 / p99 (ms) | {f['p90_ms']:.2f} / "
            f"{f['p99_ms']:.2f} |  |",
            f"| stream submit → end frame (job done): p50 (ms) | {e['p50_ms']:.2f} |  |",
        ]
    h = sse.get("held")
    if h:
        op = h["open"]
        gw_b = h["memory_before"]["groups"].get("gateway", {})
        gw_o = h["memory_open"]["groups"].get("gateway", {})
        gw_c = h["memory_after_close"]["groups"].get("gateway", {})

        def mib(g: dict[str, Any], fig: str) -> str:
            return f"{g[f'{fig}_mib']['mean']:.1f}" if g else "—"

        ps = h["per_stream"]
        fo = op.get("first_event_while_opening")
        opening_p50 = f"{fo['p50_ms']:.1f}" if fo else "—"
        wo, w = h["sync_without"], h["sync_with"]
        lines += [
            f"| streams of live (held) jobs open at once, of {op['asked']} asked | "
            f"{h['opened']} | ≥ {h['streams_goal']} |",
            f"| opened at (streams/s), {op['concurrency']} at a time / first frame while "
            f"opening, p50 (ms) | {op['opened_per_s']} / {opening_p50} |  |",
            f"| sync no-op job p50, 1 client, without / with them open (ms) | "
            f"{wo['p50_ms']:.2f} / {w['p50_ms']:.2f} ({h['sync_p50_ratio']}{TIMES}) | "
            f"≤ {SSE_SYNC_UNCHANGED:g}{TIMES} |",
            f"| sync no-op job p99 without / with them open (ms) | {wo['p99_ms']:.2f} / "
            f"{w['p99_ms']:.2f} |  |",
            f"| gateway RSS before / with them open / after closing (MiB) | {mib(gw_b, 'rss')} / "
            f"{mib(gw_o, 'rss')} / {mib(gw_c, 'rss')} |  |",
            f"| gateway USS before / with them open / after closing (MiB) | {mib(gw_b, 'uss')} / "
            f"{mib(gw_o, 'uss')} / {mib(gw_c, 'uss')} |  |",
            f"| per open stream: gateway USS / whole stack USS (KiB) | "
            f"{ps['gateway_uss_kib']} / {ps['stack_uss_kib']} |  |",
            f"| gateway CPU per sync job without / with them open (ms) | "
            f"{h['cpu_per_sync_job_without_ms'].get('gateway', 0):.2f} / "
            f"{h['cpu_per_sync_job_with_ms'].get('gateway', 0):.2f} |  |",
            f"| CPU per stream opened, all services (ms): "
            f"{_top(op.get('cpu_per_stream_ms') or {})} | "
            f"{sum((op.get('cpu_per_stream_ms') or {}).values()):.2f} |  |",
            f"| the whole measure (s) | {h['wall_s']} |  |",
        ]
    return "\n".join(lines)
