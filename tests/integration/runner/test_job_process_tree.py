"""How a confined job's process sits in the host's process tree: cloned by its template
straight into its own namespaces (pid 1 there, the template's own child, no process in
between), or, where a raw clone is not safe (a skill that started a thread at import),
forked with a waiter in between; killed whole either way."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from runner_helpers import Harness, StartRunner, eventually, processes_with, skill_files

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the job sandbox needs a root runner"),
]

CODE = """
    import subprocess, threading, time

    if {thread}:
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()

    def run(inputs):
        subprocess.Popen(["sleep", inputs["marker"]])
        print("started", flush=True)
        time.sleep(600)
        return {{}}
"""


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _ancestors(pid: int, n: int) -> list[int]:
    chain = []
    for _ in range(n):
        pid = int(_status(pid)["PPid"])
        chain.append(pid)
    return chain


@dataclass(frozen=True)
class Proc:
    pid: int
    nspid: list[str]
    """Its pid in each pid namespace it is in, the host's first."""
    template: bool
    """Its command line is a template's."""


def _proc(pid: int) -> Proc:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        template = b"template_main.py" in f.read()
    return Proc(pid, _status(pid)["NSpid"].split(), template)


async def _tree(harness: Harness, start: StartRunner, *, thread: bool) -> list[Proc]:
    """The processes from the job's own child up to the runner, seen while it runs."""
    await start()
    marker = f"{4100 + thread}.{os.getpid()}{id(harness) % 1000}"
    dep = await harness.deploy(skill_files("tree", CODE.format(thread=thread)))
    watch = await harness.submit(dep, "tree", {"marker": marker}, timeout_seconds=2)
    await watch.until(lambda r: r.type == "job.log")
    (sleeper,) = processes_with(f"sleep {marker}")
    chain = [_proc(pid) for pid in (sleeper, *_ancestors(sleeper, 5))]
    assert (await watch.terminal()).type == "job.failed"  # killed at its time limit
    await eventually(lambda: not processes_with(f"sleep {marker}"), what="job's child gone")
    return chain


async def test_a_jobs_process_is_its_templates_own_child(
    harness: Harness, start: StartRunner
) -> None:
    sleeper, job, template, outer, runner, _ = await _tree(harness, start, thread=False)
    # pid 1 of a pid namespace of its own, nested in its template's (pid 1 there).
    assert sleeper.nspid[-1] == "2"
    assert job.nspid[-1] == "1"
    assert template.template
    assert template.nspid[-1] == "1"
    assert len(job.nspid) == len(template.nspid) + 1
    # The template's root waiter outside its namespace, then this (in-process) runner.
    assert outer.template
    assert len(outer.nspid) == 1
    assert runner.pid == os.getpid()


async def test_a_skill_with_threads_gets_a_waiter_in_between(
    harness: Harness, start: StartRunner
) -> None:
    sleeper, job, waiter, template, outer, runner = await _tree(harness, start, thread=True)
    assert sleeper.nspid[-1] == "2"
    assert job.nspid[-1] == "1"
    # The template's child, in the template's namespace; the job's is nested in it.
    assert waiter.template
    assert len(waiter.nspid) == len(template.nspid)
    assert len(job.nspid) == len(waiter.nspid) + 1
    assert template.nspid[-1] == "1"
    assert outer.template
    assert runner.pid == os.getpid()
