"""How fast the dashboard paints (``cd bench && ../.venv/bin/python -m
puras_bench.dashboard_paint``): the target is the jobs page painted within 1 s on the dev
stack.

Against a stack of its own (or ``--base`` and ``--key`` of a running one) with ``--jobs``
finished jobs in the project, each of ``--runs`` runs opens a fresh browser context (no
cache, no session) in headless Chromium (the system's, as the browser tests) and takes:

* sign-in page, cold: first-contentful-paint of ``/`` with an empty cache;
* sign-in to jobs: from pressing "Sign in" to the jobs table (or its empty state) on
  screen: the key checked, the jobs module fetched, the first page of jobs listed;
* jobs page, cold: ``#/jobs`` reloaded in the signed-in tab with the browser cache
  emptied: first-contentful-paint, and the jobs table visible, both from navigation
  start (the whole load: page, styles, every module, the API call);
* jobs page, warm: the same reload with the cache kept (each file revalidated, a 304).

"Visible" is taken in the page: a MutationObserver installed before the page's own
scripts records ``performance.now()`` when the table or the empty state is added, so
Playwright's own polling is not in the figure (only in the sign-in one, which is timed
from Python around the click and includes a few ms of it). Prints p50/p95/max per
measure; ``--json`` writes them to a file too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, sync_playwright

from puras_bench.machine import machine_facts
from puras_bench.stats import pct
from puras_gateway.dashboard.serve import STATIC_DIR

SIGN_IN_FIELD = "Project API key or admin token"
# The jobs page's content once its first list call answered: rows, or the empty state.
JOBS_SHOWN = "main table, main .empty"

# Runs before the page's scripts (through the DevTools protocol, so the page's CSP does
# not apply to it): notes when the jobs content first appears.
WATCH_JOBS = """
(() => {
  const sel = __SELECTOR__;
  const mark = () => {
    if (window.__jobsShownAt === undefined && document.querySelector(sel)) {
      window.__jobsShownAt = performance.now();
    }
  };
  new MutationObserver(mark).observe(document, { childList: true, subtree: true });
})();
""".replace("__SELECTOR__", json.dumps(JOBS_SHOWN))


def _log(msg: str) -> None:
    print(f"[paint] {msg}", file=sys.stderr, flush=True)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("no Chromium on PATH (scripts/ensure_browser.sh installs Debian's)")


@contextlib.contextmanager
def own_stack() -> Iterator[tuple[str, str]]:
    """A dev stack with the bench project deployed and a funded project; its base and key."""
    from puras_bench.ours import started_stack

    with started_stack({}, _log) as ours:
        yield ours.stack.api_base, ours.api_key


# The bench project's no-op, or the examples' echo on a stack started with ``./dev up``.
CANDIDATES: tuple[tuple[str, dict[str, Any]], ...] = (("noop", {"x": 1}), ("echo", {"text": "hi"}))


def fill_jobs(base: str, key: str, n: int) -> str:
    """Runs no-op jobs to the end until the project has ``n`` (so the jobs page has rows
    to list); returns the skill used."""
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as http:
        have = len(http.get("/v1/jobs", params={"limit": 100}).json().get("jobs", []))
        refusals = []
        for skill, inputs in CANDIDATES:
            probe = http.post(
                "/v1/jobs", params={"wait": "true"}, json={"skill": skill, "inputs": inputs}
            )
            if probe.status_code == 200:
                break
            refusals.append(f"{skill}: {probe.status_code} {probe.text}")
        else:
            raise SystemExit("no no-op skill runs here: " + "; ".join(refusals))
        for _ in range(max(0, n - have - 1)):
            r = http.post(
                "/v1/jobs", params={"wait": "true"}, json={"skill": skill, "inputs": inputs}
            )
            r.raise_for_status()
    return skill


def _fcp(page: Page) -> float | None:
    v = page.evaluate(
        "(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime ?? null"
    )
    return None if v is None else float(v)


def _jobs_shown(page: Page) -> float:
    page.wait_for_selector(JOBS_SHOWN, state="visible", timeout=30_000)
    return float(page.evaluate("window.__jobsShownAt"))


def one_run(browser: Browser, base: str, key: str, has_jobs_page: bool) -> dict[str, float]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        ctx.add_init_script(WATCH_JOBS)
        page = ctx.new_page()
        out: dict[str, float] = {}
        page.goto(base + "/", wait_until="load")
        page.get_by_label(SIGN_IN_FIELD).wait_for()
        fcp = _fcp(page)
        if fcp is not None:
            out["sign-in page, cold: first paint"] = fcp
        if not has_jobs_page:
            return out
        page.get_by_label(SIGN_IN_FIELD).fill(key)
        t0 = time.perf_counter()
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_selector(JOBS_SHOWN, state="visible", timeout=30_000)
        out["sign-in to jobs table"] = (time.perf_counter() - t0) * 1000
        cdp = ctx.new_cdp_session(page)
        for label, clear in (("cold", True), ("warm", False)):
            if clear:
                cdp.send("Network.clearBrowserCache")
            page.reload(wait_until="load")
            shown = _jobs_shown(page)
            fcp = _fcp(page)
            if fcp is not None:
                out[f"jobs page, {label}: first paint"] = fcp
            out[f"jobs page, {label}: jobs table visible"] = shown
        return out
    finally:
        ctx.close()


def summarize(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    names = list(dict.fromkeys(k for r in runs for k in r))
    out: dict[str, dict[str, float]] = {}
    for name in names:
        vals = sorted(r[name] for r in runs if name in r)
        out[name] = {
            "n": len(vals),
            "p50_ms": round(pct(vals, 50), 1),
            "p95_ms": round(pct(vals, 95), 1),
            "max_ms": round(vals[-1], 1),
        }
    return out


def measure(base: str, key: str, jobs: int, runs: int, warmup: int = 1) -> dict[str, Any]:
    has_jobs_page = (STATIC_DIR / "pages" / "jobs.js").is_file()
    if has_jobs_page:
        skill = fill_jobs(base, key, jobs)
        _log(f"{jobs} finished {skill} jobs in the project")
    else:
        _log("no pages/jobs.js in this gateway: measuring the sign-in page only")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium(),
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        try:
            for _ in range(warmup):
                one_run(browser, base, key, has_jobs_page)
            samples = []
            for i in range(runs):
                samples.append(one_run(browser, base, key, has_jobs_page))
                _log(f"run {i + 1}/{runs}: " + ", ".join(f"{v:.0f}" for v in samples[-1].values()))
        finally:
            browser.close()
    return {
        "jobs_in_project": jobs if has_jobs_page else None,
        "jobs_page": has_jobs_page,
        "runs": runs,
        "browser": "headless Chromium (system), fresh context per run",
        "results": summarize(samples),
    }


def print_table(report: dict[str, Any]) -> None:
    print("| measure | n | p50 ms | p95 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for name, s in report["results"].items():
        print(f"| {name} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['max_ms']} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", help="a running gateway (default: start a stack of its own)")
    ap.add_argument("--key", help="a project API key of --base")
    ap.add_argument("--jobs", type=int, default=50, help="finished jobs in the project (50)")
    ap.add_argument("--runs", type=int, default=20, help="measured runs (20)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if bool(args.base) != bool(args.key):
        ap.error("--base and --key go together")
    facts = machine_facts()
    if args.base:
        report = measure(args.base.rstrip("/"), args.key, args.jobs, args.runs)
    else:
        with own_stack() as (base, key):
            report = measure(base, key, args.jobs, args.runs)
    report["machine"] = facts
    print_table(report)
    print(
        f"\n{facts['date_utc']}, {facts['nproc']} CPUs ({facts['cpu_model']}), "
        f"{facts['mem_total_mb']} MB, load before {facts['loadavg_before']}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
