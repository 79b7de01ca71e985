"""The runner against a real nats-server: work in, job events out, real processes.

Each test builds its bundle in memory, stores it in the JetStream bundle store, queues
``RunJob`` items on ``work.<pool>`` and waits on the job's own events.
"""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
from runner_helpers import Harness, StartRunner, eventually, processes_with, skill_files

from puras_common.events.subjects import WORK_STREAM
from puras_runner.adapters.templates import TEMPLATE_SCRIPT

pytestmark = pytest.mark.integration


async def _consumer_settled(harness: Harness, durable: str) -> bool:
    info = await harness.bus.js.consumer_info(WORK_STREAM, durable)
    return not info.num_ack_pending and not info.num_pending


async def _wait_acked(harness: Harness, durable: str) -> None:
    for _ in range(500):
        if await _consumer_settled(harness, durable):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("work item never acked")


ECHO = """
    import os

    def run(inputs):
        return {"echo": inputs.get("x"), "cwd": os.getcwd(), "n": len(inputs.get("big", ""))}
"""


async def test_success_records_start_and_result(harness: Harness, start: StartRunner) -> None:
    runner = await start()
    dep = await harness.deploy(skill_files("echo", ECHO))
    watch = await harness.run(dep, "echo", {"x": [1, "two"]})
    started = watch.of("job.started")[0]
    assert (started.attempt, started.deployment_id) == (1, dep.deployment_id)
    assert started.runner_id == runner.runner.runner_id
    (done,) = watch.of("job.succeeded")
    # The end carries the attempt's facts; the job's skill, inputs and deployment are on
    # its earlier events.
    assert done.result["echo"] == [1, "two"]
    assert done.result["cwd"] == "/job"  # the job's private working directory
    assert done.attempt == 1
    assert done.started_at == started.started_at
    assert done.finished_at >= done.started_at
    ids = [r.envelope.id for r in watch.events]
    assert ids[0] == f"{watch.job.job_id}:started:1"
    assert ids[-1] == f"{watch.job.job_id}:terminal"
    await _wait_acked(harness, runner.settings.durable)


async def test_large_inputs_travel_whole(harness: Harness, start: StartRunner) -> None:
    await start()
    dep = await harness.deploy(skill_files("echo", ECHO))
    watch = await harness.run(dep, "echo", {"big": "y" * 300_000})
    assert watch.of("job.succeeded")[0].result["n"] == 300_000


async def test_an_exception_fails_the_job_with_type_message_traceback(
    harness: Harness, start: StartRunner
) -> None:
    runner = await start()
    code = """
        def helper(v):
            raise ValueError(f"bad value {v!r}")

        def run(inputs):
            return helper(inputs["v"])
    """
    dep = await harness.deploy(skill_files("boom", code))
    watch = await harness.run(dep, "boom", {"v": 42})
    (failed,) = watch.of("job.failed")
    error = failed.error
    assert error.startswith("ValueError: bad value 42\n\nTraceback (most recent call last):\n")
    assert 'skills/boom/main.py", line 6, in run' in error
    assert "line 3, in helper" in error
    assert error.endswith("ValueError: bad value 42")
    assert "template_main" not in error  # the runner's own frames are not the user's story
    # Failed by its own code: acked, never retried (J11).
    await _wait_acked(harness, runner.settings.durable)
    assert len(watch.of("job.started")) == 1


async def test_output_schema_violation(harness: Harness, start: StartRunner) -> None:
    await start()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    dep = await harness.deploy(
        skill_files("typed", "def run(inputs):\n    return {'n': 'x'}\n", output_schema=schema)
    )
    watch = await harness.run(dep, "typed")
    assert watch.of("job.failed")[0].error == (
        "output does not match output_schema: result.n: 'x' is not of type 'integer'"
    )


async def test_bad_return_values(harness: Harness, start: StartRunner) -> None:
    await start()
    code = """
        import datetime

        def run(inputs):
            if inputs["kind"] == "list":
                return [1, 2]
            if inputs["kind"] == "nan":
                return {"x": float("nan")}
            return {"when": datetime.datetime(2020, 1, 1)}
    """
    dep = await harness.deploy(skill_files("bad", code))
    errors = {}
    for kind in ("list", "nan", "date"):
        watch = await harness.run(dep, "bad", {"kind": kind})
        errors[kind] = watch.of("job.failed")[0].error
    assert errors["list"] == "run() must return a dict (a JSON object), it returned list"
    assert errors["nan"].startswith("run() returned a dict that is not JSON-serializable")
    assert "datetime is not JSON serializable" in errors["date"]


async def test_result_over_the_limit(harness: Harness, start: StartRunner) -> None:
    await start(max_result_bytes=1000)
    dep = await harness.deploy(
        skill_files("big", "def run(inputs):\n    return {'x': 'a' * 5000}\n")
    )
    watch = await harness.run(dep, "big")
    error = watch.of("job.failed")[0].error
    assert error.startswith("result is too large: 5008 bytes of JSON, over the 1000-byte limit")


async def test_timeout_kills_the_whole_process_group(harness: Harness, start: StartRunner) -> None:
    await start()
    marker = f"1000.{os.getpid()}{id(harness) % 1000}"
    code = f"""
        import os, subprocess, sys, time

        def run(inputs):
            child = subprocess.Popen(["sleep", "{marker}"])
            print("pids", os.getpid(), child.pid, flush=True)
            time.sleep(600)
            return {{}}
    """
    dep = await harness.deploy(skill_files("slow", code))
    watch = await harness.run(dep, "slow", timeout_seconds=1)
    assert watch.of("job.failed")[0].error == "timed out after 1s (wall-clock limit)"
    lines = [line for e in watch.of("job.log") for line in e.lines]
    # The job is pid 1 of a pid namespace of its own; its child is 2 there.
    assert next(line for line in lines if line.startswith("pids")) == "pids 1 2"
    await eventually(lambda: not processes_with(f"sleep {marker}"), what="job's child gone")


async def test_memory_limit(harness: Harness, start: StartRunner) -> None:
    await start(memory_limit_mb=256)
    code = """
        def run(inputs):
            hog = bytearray(600 * 1024 * 1024)
            return {"n": len(hog)}
    """
    dep = await harness.deploy(skill_files("hog", code))
    watch = await harness.run(dep, "hog")
    error = watch.of("job.failed")[0].error
    # The job's cgroup counts its memory; the kernel ends it at the limit.
    assert error.startswith("memory limit of 256 MB exceeded: the kernel killed the job's")


async def test_stdout_and_stderr_become_capped_log_events(
    harness: Harness, start: StartRunner
) -> None:
    await start(max_log_bytes=2000)
    code = """
        import sys

        def run(inputs):
            print("starting")
            print("a warning", file=sys.stderr)
            print("no newline at the end", end="")
            for i in range(inputs["flood"]):
                print(f"line {i:04d}")
            return {"done": True}
    """
    dep = await harness.deploy(skill_files("chatty", code))
    watch = await harness.run(dep, "chatty", {"flood": 0})
    logs = watch.of("job.log")
    assert [line for e in logs if e.stream == "stdout" for line in e.lines] == [
        "starting",
        "no newline at the end",
    ]
    assert [line for e in logs if e.stream == "stderr" for line in e.lines] == ["a warning"]
    assert not any(e.truncated for e in logs)

    # Both streams share the cap, by order of arrival; the rest is read and dropped.
    watch = await harness.run(dep, "chatty", {"flood": 5000})
    assert watch.of("job.succeeded")
    logs = watch.of("job.log")
    assert len(logs) < 20, f"{len(logs)} log events: lines must be batched"
    stdout = [line for e in logs if e.stream == "stdout" for line in e.lines]
    assert stdout[0] == "starting"
    assert "line 0000" in stdout[1]
    assert "line 4999" not in stdout
    kept = sum(len(line) + 1 for e in logs for line in e.lines)
    assert 1900 <= kept <= 2001
    assert logs[-1].truncated
    assert not any(e.truncated for e in logs[:-1])
    # Log events come before the terminal event, in the job's own sequence.
    types = [r.type for r in watch.events]
    assert types[0] == "job.started"
    assert types[-1] == "job.succeeded"
    assert set(types[1:-1]) == {"job.log"}


async def test_the_environment_is_clean(
    harness: Harness, start: StartRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Something only the runner's own environment has: it must reach no job, not even
    # through /proc/self/environ (which shows the environment a process started with).
    monkeypatch.setenv("PURAS_RUNNER_TEST_MARKER", "runner-only-value-7d1")
    runner = await start()
    code = """
        import os

        def run(inputs):
            with open("/proc/self/environ", "rb") as f:
                initial = f.read().decode(errors="replace")
            return {"env": dict(os.environ), "initial": initial}
    """
    dep = await harness.deploy(skill_files("env", code))
    watch = await harness.run(dep, "env")
    result = watch.of("job.succeeded")[0].result
    env: dict[str, Any] = result["env"]
    job_id = watch.job.job_id
    del runner
    bundle = "/bundle"  # the jail's own paths: nothing of the runner's disk layout
    assert set(env) == {
        "PATH",
        "HOME",
        "TMPDIR",
        "LANG",
        "PYTHONPATH",
        "PURAS_JOB_ID",
        "PURAS_PROJECT_ID",
        "PURAS_SKILL",
        "PURAS_DEPLOYMENT_ID",
        "PURAS_DEPLOYMENT_ROOT",
        "PURAS_ATTEMPT",
        # the sandbox's egress proxy (see docs/runner.md)
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "NO_PROXY",
        "no_proxy",
        "PURAS_EGRESS_PROXY",
    }
    assert env["PATH"] == "/venv/bin:/usr/local/bin:/usr/bin:/bin"
    assert (env["HOME"], env["TMPDIR"]) == ("/job", "/tmp")
    assert (env["PYTHONPATH"], env["PURAS_DEPLOYMENT_ROOT"]) == (bundle, bundle)
    assert (env["PURAS_JOB_ID"], env["PURAS_PROJECT_ID"]) == (job_id, dep.project_id)
    assert (env["PURAS_SKILL"], env["PURAS_DEPLOYMENT_ID"]) == ("env", dep.deployment_id)
    assert (env["PURAS_ATTEMPT"], env["LANG"]) == ("1", "C.UTF-8")
    assert "runner-only-value-7d1" not in result["initial"]
    assert "NATS" not in result["initial"]


async def test_secrets_are_injected_and_masked(harness: Harness, start: StartRunner) -> None:
    class Secrets:
        async def secrets_for(self, project_id: str) -> dict[str, str]:
            return {"API_TOKEN": "tok-9f8e7d6c"} if project_id == harness.project_id else {}

    await start(secrets=Secrets())
    code = """
        import os

        def run(inputs):
            print("using", os.environ["API_TOKEN"])
            raise RuntimeError("rejected " + os.environ["API_TOKEN"])
    """
    dep = await harness.deploy(skill_files("secret", code))
    watch = await harness.run(dep, "secret")
    assert [line for e in watch.of("job.log") for line in e.lines] == ["using ***"]
    assert watch.of("job.failed")[0].error.startswith("RuntimeError: rejected ***")


async def test_drive_writes_persist_and_nothing_else_does(
    harness: Harness, start: StartRunner
) -> None:
    runner = await start()
    code = """
        import os, tempfile

        def run(inputs):
            before = sorted(os.listdir(".")), sorted(os.listdir(tempfile.gettempdir()))
            os.makedirs("drive/out", exist_ok=True)
            with open("drive/out/hello.txt", "w") as f:
                f.write(inputs["text"])
            with open("scratch.txt", "w") as f:
                f.write("temp")
            with tempfile.NamedTemporaryFile(delete=False) as f:
                f.write(b"x")
            os.makedirs(".cache/lib", exist_ok=True)
            return {"before": before, "tmpfile": f.name, "cwd": os.getcwd()}
    """
    dep = await harness.deploy(skill_files("drive", code))
    first = await harness.run(dep, "drive", {"text": "one"})
    result = first.of("job.succeeded")[0].result
    assert result["before"] == [["drive"], []]
    assert result["tmpfile"].startswith("/tmp/")
    drive_file = runner.settings.drive_root / dep.project_id / "out" / "hello.txt"
    assert drive_file.read_text() == "one"
    # Written as the project's own uid: never root, never the runner's.
    assert drive_file.stat().st_uid not in (0, os.getuid())
    # The next job of the project starts from an empty workdir and /tmp: nothing leaked.
    second = await harness.run(dep, "drive", {"text": "two"})
    assert second.of("job.succeeded")[0].result["before"] == [["drive"], []]
    assert drive_file.read_text() == "two"
    await runner.stop()
    # Workdirs were private tmpfs mounts: nothing of them is on the host; the drive stayed.
    assert [p.name for p in (runner.settings.data_dir / "jobs").iterdir()] == [".lock"]
    assert drive_file.read_text() == "two"


async def test_jobs_run_concurrently_up_to_the_slots(harness: Harness, start: StartRunner) -> None:
    await start(slots=4)
    # Each job waits until all four have started: only concurrent runs can succeed.
    code = """
        import os, time

        def run(inputs):
            os.makedirs("drive/barrier", exist_ok=True)
            open(f"drive/barrier/{inputs['i']}", "w").close()
            deadline = time.monotonic() + 20
            while len(os.listdir("drive/barrier")) < 4:
                if time.monotonic() > deadline:
                    raise TimeoutError("the other jobs never ran alongside this one")
                time.sleep(0.01)
            return {"i": inputs["i"], "token": os.urandom(8).hex()}
    """
    dep = await harness.deploy(skill_files("barrier", code))
    watches = [await harness.submit(dep, "barrier", {"i": i}) for i in range(4)]
    await asyncio.gather(*(w.terminal() for w in watches))
    results = [w.of("job.succeeded")[0].result for w in watches]
    assert sorted(r["i"] for r in results) == [0, 1, 2, 3]
    assert len({r["token"] for r in results}) == 4


async def test_an_import_error_fails_each_job(harness: Harness, start: StartRunner) -> None:
    await start()
    code = """
        import not_a_module_anywhere

        def run(inputs):
            return {}
    """
    dep = await harness.deploy(skill_files("broken", code))
    for _ in range(2):
        watch = await harness.run(dep, "broken")
        error = watch.of("job.failed")[0].error
        assert error.startswith(
            "ModuleNotFoundError: No module named 'not_a_module_anywhere' "
            "(while importing main.py)\n\nTraceback"
        )
        assert "skills/broken/main.py" in error
        assert "importlib" not in error


async def test_a_crashed_template_is_replaced(harness: Harness, start: StartRunner) -> None:
    runner = await start()
    code = """
        import signal

        def run(inputs):
            if inputs.get("crash"):
                print("waiting", flush=True)
                signal.pause()
            return {"ok": True}
    """
    dep = await harness.deploy(skill_files("crash", code))
    watch = await harness.submit(dep, "crash", {"crash": True})
    await watch.until(lambda r: r.type == "job.log")
    # A job cannot reach its template (another pid namespace): kill it from outside.
    (template,) = runner.runner.engine.templates.live()
    os.kill(template.pid, signal.SIGKILL)
    await watch.terminal()
    assert "template process ended" in watch.of("job.failed")[0].error
    watch = await harness.run(dep, "crash")
    assert watch.of("job.succeeded")


async def test_an_unusable_bundle_fails_the_job(harness: Harness, start: StartRunner) -> None:
    await start()
    dep = await harness.deploy(skill_files("echo", ECHO))
    tampered = dep.__class__(dep.project_id, dep.deployment_id, dep.key, "0" * 64, None)
    watch = await harness.run(tampered, "echo")
    assert "sha256" in watch.of("job.failed")[0].error
    watch = await harness.run(dep, "nope")
    assert watch.of("job.failed")[0].error == (
        f"skill 'nope' is not in deployment {dep.deployment_id}; its skills: echo"
    )


async def test_bad_requirements_fail_with_uv_output(harness: Harness, start: StartRunner) -> None:
    await start()
    files = skill_files("echo", ECHO)
    files["requirements.txt"] = "puras-no-such-package-9f3e==1.0\n"
    dep = await harness.deploy(files)
    watch = await harness.run(dep, "echo")
    error = watch.of("job.failed")[0].error
    assert error.startswith(
        "could not prepare the deployment's virtualenv: installing requirements.txt failed "
        "(uv exit code"
    )
    assert "puras-no-such-package-9f3e" in error.split("\n", 1)[1]  # uv's own message


async def test_requirements_are_installed_into_the_deployment_venv(
    harness: Harness, start: StartRunner
) -> None:
    """Needs network access to PyPI (one small pure-Python package)."""
    runner = await start()
    code = """
        import sys
        import six

        def run(inputs):
            return {"six": six.__version__, "prefix": sys.prefix}
    """
    files = skill_files("withdeps", code)
    files["requirements.txt"] = "six==1.16.0\n"
    dep = await harness.deploy(files)
    watch = await harness.run(dep, "withdeps")
    result = watch.of("job.succeeded")[0].result
    assert result["six"] == "1.16.0"
    assert result["prefix"] == "/venv"
    assert dep.requirements_sha256 is not None
    assert (runner.settings.data_dir / "venvs" / dep.requirements_sha256).is_dir()


async def test_no_process_is_left_after_the_runner_stops(
    harness: Harness, start: StartRunner
) -> None:
    runner = await start()
    dep = await harness.deploy(skill_files("echo", ECHO))
    await harness.run(dep, "echo")
    marker = str(runner.settings.data_dir / "bundles")
    assert processes_with(str(TEMPLATE_SCRIPT))
    assert processes_with(marker)
    await runner.stop()
    await eventually(lambda: not processes_with(marker), what="templates and children gone")


async def test_heartbeats_keep_a_long_job_from_redelivery(
    harness: Harness, start: StartRunner
) -> None:
    runner = await start(ack_wait_s=1)
    code = """
        import time

        def run(inputs):
            time.sleep(3)  # three times ack_wait
            return {"ok": True}
    """
    dep = await harness.deploy(skill_files("long", code))
    watch = await harness.run(dep, "long")
    assert watch.of("job.succeeded")[0].attempt == 1
    assert [e.attempt for e in watch.of("job.started")] == [1]
    await _wait_acked(harness, runner.settings.durable)


async def test_idle_templates_stop_and_come_back(harness: Harness, start: StartRunner) -> None:
    runner = await start(template_idle_s=0.2)
    dep = await harness.deploy(skill_files("echo", ECHO))
    await harness.run(dep, "echo")
    marker = str(runner.settings.data_dir / "bundles" / dep.deployment_id)
    await eventually(lambda: not processes_with(marker), what="idle template stopped")
    watch = await harness.run(dep, "echo")
    assert watch.of("job.succeeded")


async def test_leftovers_of_a_dead_run_are_swept_at_start(
    harness: Harness, start: StartRunner
) -> None:
    jobs = harness.tmp / "runner" / "jobs"
    stale = jobs / "someone-1" / "tmp"
    stale.mkdir(parents=True)
    (stale / "left.txt").write_text("x")
    (jobs / ".ready-1").mkdir()
    await start()
    assert sorted(p.name for p in jobs.iterdir()) == [".lock", f".ready-{os.getpid()}"]
