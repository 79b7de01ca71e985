"""How much a fresh, isolated process per job costs (ARCHITECTURE §5a).

:func:`measure_isolation_overhead` builds a throwaway bundle and venv under a temporary
directory, starts a real template for a no-op ``run(inputs) -> {}``, and times jobs through
the same engine code the runner uses (workdir, pipes, hand-off to a waiting child, result
read back), against calling the same function in-process. No NATS is involved: this is
the engine's share of a job's latency, not the event log's.

    cd bench && python -c "import json, puras_bench.isolation as b; \
print(json.dumps(b.measure_isolation_overhead(500), indent=1))"

``bench/run.py`` reports it as measure (c).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uv

from puras_common.events.types import SkillRecord
from puras_runner.adapters.engine import Execution, TemplateEngine, prepare_skill
from puras_runner.adapters.templates import TemplatePool
from puras_runner.adapters.venvs import VenvBuilder
from puras_runner.adapters.workdir import Workdirs
from puras_runner.app.ports import Deployment
from puras_runner.bootstrap import sdk_dir
from puras_runner.domain.jobs import cpu_limits

__all__ = ["measure_isolation_overhead"]

NOOP = "def run(inputs):\n    return {}\n"
WARMUP = 20
PROJECT = "bench"


def measure_isolation_overhead(
    n: int = 200, *, concurrency: int = 4, python: str | None = None
) -> dict[str, Any]:
    """Time ``n`` no-op jobs one after another (latency) and ``n`` more ``concurrency`` at a
    time (throughput); see the module docstring. Times are microseconds unless named."""
    if n < 1:
        raise ValueError("n must be at least 1")
    try:
        import uvloop
    except ImportError:  # the runner depends on it; keep the function usable without
        return asyncio.run(_measure(n, concurrency, python or sys.executable))
    return uvloop.run(_measure(n, concurrency, python or sys.executable))


def _stats(values_s: list[float]) -> dict[str, float]:
    us = sorted(v * 1e6 for v in values_s)

    def pct(p: float) -> float:
        return round(us[min(len(us) - 1, int(p * len(us)))], 1)

    return {
        "p50": pct(0.5),
        "p90": pct(0.9),
        "p99": pct(0.99),
        "mean": round(statistics.fmean(us), 1),
    }


async def _measure(n: int, concurrency: int, python: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="puras-bench-") as tmp:
        root = Path(tmp)
        bundle = root / "bundle"
        (bundle / "skills" / "noop").mkdir(parents=True)
        (bundle / "skills" / "noop" / "main.py").write_text(NOOP)

        loop = asyncio.get_running_loop()
        t = loop.time()
        venvs = VenvBuilder(
            root / "venvs",
            python=python,
            uv_bin=uv.find_uv_bin(),
            sdk_dir=sdk_dir(),
            cache_dir=root / "uv-cache",
        )
        venv = await venvs.ensure(bundle, "bench")
        venv_ms = (loop.time() - t) * 1000

        workdirs = Workdirs(root / "jobs", root / "drive", keep_per_project=concurrency)
        workdirs.reset()
        templates = TemplatePool(idle_s=3600, spares=min(2, concurrency))
        # The bundle is already on disk and prepare() is never called.
        engine = TemplateEngine(
            venvs=venvs,
            templates=templates,
            workdirs=workdirs,
            memory_limit_mb=1024,
            max_result_bytes=1 << 20,
        )
        spec = SkillRecord(name="noop", kind="deterministic", entrypoint="main.py:run")
        prepared = prepare_skill(
            Deployment(id="bench", root=bundle, skills={"noop": spec}),
            spec,
            venv,
            memory_limit_mb=1024,
        )
        t = loop.time()
        template = await templates.get(prepared.key, prepared.template, ready_timeout=60)
        template_ms = (loop.time() - t) * 1000

        soft, hard = cpu_limits(60)
        counter = iter(range(10**9))

        async def one() -> tuple[float, float, float, float, float]:
            i = next(counter)
            t0 = time.perf_counter()
            workdir = workdirs.create(f"job{i}", 1, PROJECT)
            t1 = time.perf_counter()
            execution: Execution = await engine.start_in(
                template,
                workdir,
                lambda _s, _d: None,
                {
                    "inputs": {},
                    "env": {"PURAS_JOB_ID": f"job{i}"},
                    "cwd": str(workdir),
                    "cpu_soft_s": soft,
                    "cpu_hard_s": hard,
                    "max_result_bytes": 1 << 20,
                },
                project_id=PROJECT,
            )
            facts = await execution.wait(60)
            t2 = time.perf_counter()
            if facts.report is None or facts.timed_out:
                raise RuntimeError(f"bench job failed: {facts}")
            await execution.close()
            t3 = time.perf_counter()
            return t1 - t0, t2 - t1, t2 - t0, t3 - t2, execution.handle.fork_us / 1e6

        try:
            for _ in range(WARMUP):
                await one()
            rows = [await one() for _ in range(n)]

            sem = asyncio.Semaphore(concurrency)

            async def limited() -> None:
                async with sem:
                    await one()

            t = loop.time()
            await asyncio.gather(*(limited() for _ in range(n)))
            throughput = n / (loop.time() - t)
        finally:
            await engine.close()

        # The same function, called in this process.
        namespace: dict[str, Any] = {}
        exec(compile(NOOP, "main.py", "exec"), namespace)  # noqa: S102 - our own constant
        func = namespace["run"]
        calls = []
        for _ in range(n):
            c0 = time.perf_counter()
            func({})
            calls.append(time.perf_counter() - c0)

        isolated = _stats([r[2] for r in rows])
        in_process = _stats(calls)
        return {
            "n": n,
            "cpus": os.cpu_count(),
            "python": python,
            "in_process_call_us": in_process,
            "isolated_job_us": isolated,
            "overhead_us_p50": round(isolated["p50"] - in_process["p50"], 1),
            "workdir_us": _stats([r[0] for r in rows]),
            "handoff_to_result_us": _stats([r[1] for r in rows]),
            "teardown_us": _stats([r[3] for r in rows]),
            "spare_fork_us": _stats([r[4] for r in rows]),
            "template_start_ms": round(template_ms, 1),
            "template_import_ms": template.import_ms,
            "venv_build_ms": round(venv_ms, 1),
            "throughput_jobs_per_s": {"concurrency": concurrency, "value": round(throughput, 1)},
        }
