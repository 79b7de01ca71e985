"""Templates of a deployment the project no longer uses stop as soon as none of their jobs
runs (real, unconfined template processes; the activation is read off the jobs)."""

from __future__ import annotations

import dataclasses
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from puras_runner.adapters.engine import Execution
from puras_runner.adapters.templates import TemplatePool, TemplateProcess, TemplateSpec
from puras_runner.adapters.workdir import Workdirs
from puras_runner.domain.jobs import process_limits

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
NOOP = "def run(inputs):\n    return {}\n"


def _spec(tmp_path: Path, project: str, deployment: str) -> TemplateSpec:
    bundle = tmp_path / deployment
    skill_dir = bundle / "skills" / "noop"
    skill_dir.mkdir(parents=True, exist_ok=True)
    (skill_dir / "main.py").write_text(NOOP)
    return TemplateSpec(
        python=Path(sys.executable),
        venv_bin=Path(sys.executable).parent,
        bundle_root=bundle,
        skill_dir=skill_dir,
        module_file="main.py",
        function="run",
        deployment_id=deployment,
        skill="noop",
        limits=dataclasses.asdict(process_limits(memory_limit_mb=512)),
        project_id=project,
    )


async def _start_job(tpl: TemplateProcess, workdirs: Workdirs) -> Execution:
    """A job handed to ``tpl`` as the engine hands one (``TemplateEngine.start_in``)."""
    doc: dict[str, Any] = {
        "inputs": {},
        "env": {},
        "cwd": "/",
        "cpu_soft_s": 30,
        "cpu_hard_s": 31,
        "max_result_bytes": 1 << 20,
    }
    pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
    try:
        handle = await tpl.run(msgspec.json.encode(doc), [w for _, w in pipes])
    finally:
        for _, w in pipes:
            os.close(w)
    tpl.active += 1
    (out_r, _), (err_r, _), (res_r, _) = pipes
    return Execution(
        template=tpl,
        handle=handle,
        workdir=None,
        workdirs=workdirs,
        stdout_r=out_r,
        stderr_r=err_r,
        result_r=res_r,
        on_output=lambda _s, _d: None,
        result_cap=2 << 20,
        project_id=tpl.spec.project_id,
    )


async def _finish(ex: Execution) -> None:
    facts = await ex.wait(30)
    assert facts.report is not None
    await ex.close()


async def test_templates_of_a_replaced_deployment_stop_once_idle(tmp_path: Path) -> None:
    pool = TemplatePool(idle_s=3600, spares=1)
    workdirs = Workdirs(tmp_path / "jobs", tmp_path / "drive", keep_per_project=1)
    old, new = _spec(tmp_path, "p", "d1"), _spec(tmp_path, "p", "d2")
    other = _spec(tmp_path, "q", "d9")
    try:
        pool.job_arrived("p", "d1", T0)
        pool.job_arrived("q", "d9", T0)
        tpl_old = await pool.get(("d1", "noop"), old, ready_timeout=30)
        tpl_other = await pool.get(("d9", "noop"), other, ready_timeout=30)
        running = await _start_job(tpl_old, workdirs)

        # The project's newest job is pinned to d2: d2 was activated after d1's jobs.
        pool.job_arrived("p", "d2", T0 + timedelta(seconds=2))
        assert tpl_old.retired
        # ...but its job still runs: the template stays until that one is over.
        assert pool.get_live(("d1", "noop")) is tpl_old
        await _finish(running)
        assert pool.get_live(("d1", "noop")) is None
        assert not tpl_old.alive
        # Another project's template knows nothing of this.
        assert pool.get_live(("d9", "noop")) is tpl_other
        assert not tpl_other.retired

        # A job submitted before the switch (older than d2's) still runs on d1, in a
        # template that stops once that job is done.
        pool.job_arrived("p", "d1", T0 + timedelta(seconds=1))
        straggler = await pool.get(("d1", "noop"), old, ready_timeout=30)
        assert straggler is not tpl_old
        assert straggler.retired
        await _finish(await _start_job(straggler, workdirs))
        assert pool.get_live(("d1", "noop")) is None

        # An idle template is stopped at once when its deployment is replaced (here
        # d2 by a rollback to d1).
        tpl_new = await pool.get(("d2", "noop"), new, ready_timeout=30)
        await _finish(await _start_job(tpl_new, workdirs))
        assert not tpl_new.retired
        assert pool.get_live(("d2", "noop")) is tpl_new
        pool.job_arrived("p", "d1", T0 + timedelta(seconds=3))
        assert pool.get_live(("d2", "noop")) is None
        assert not tpl_new.alive
    finally:
        await pool.close()
    for tpl in (tpl_old, straggler, tpl_new):
        assert tpl._proc.returncode is not None  # the processes are gone, not only forgotten
