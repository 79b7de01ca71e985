"""``puras dev demo``: a fresh stack, the examples pushed, a few jobs run, all stopped.

The stack lives in a temporary directory with its own ports, so the demo neither needs
nor disturbs a ``./dev up`` that may be running. Nothing here sleeps to wait: sync jobs
block in the gateway (``?wait=true``), and async jobs are followed on their SSE streams.

The agentic examples (``hello``, ``caption``) run when the demo's environment configures
a model provider (:mod:`puras_cli.devstack.demo_models`); without one the demo says in
one line how to enable them and runs the deterministic skills alone.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from puras_cli import api
from puras_cli.client import PurasClient, PurasError
from puras_cli.devstack.demo_models import ENABLE_HINT, ModelSetup, choose_models
from puras_cli.devstack.png import gradient_png, png_data_url
from puras_cli.devstack.signals import ignoring_interrupts, terminate_as_interrupt
from puras_cli.devstack.stack import Stack

__all__ = ["DemoResult", "follow_to_end", "run_demo"]

Echo = Callable[..., None]
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
EXAMPLES = ("quickstart", "image-tools")
AGENT_EVENTS = frozenset({"agent_start", "model_response", "tool_call", "tool_result", "usage"})
HELLO_PROMPT = "What is Puras, in one sentence?"
CAPTION_PROMPT = "Tone: playful. Write the caption."


@dataclass(frozen=True)
class DemoResult:
    label: str
    job: Mapping[str, Any]
    round_trip_s: float

    @property
    def ok(self) -> bool:
        return self.job.get("status") == "succeeded"


def _duration(job: Mapping[str, Any]) -> str:
    """The run time the job itself records (started → finished), if it has both."""
    try:
        started = datetime.fromisoformat(str(job["started_at"]))
        finished = datetime.fromisoformat(str(job["finished_at"]))
    except (KeyError, TypeError, ValueError):
        return "-"
    ms = (finished - started).total_seconds() * 1000
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _blocks_text(blocks: Any) -> str:
    """The text of recorded content blocks (text blocks; tool uses and files by name)."""
    if not isinstance(blocks, list):
        return ""
    parts = []
    for b in blocks:
        if not isinstance(b, Mapping):
            continue
        if isinstance(b.get("text"), str):
            parts.append(b["text"])
        elif b.get("type") == "tool_use" or "name" in b:
            parts.append(f"[{b.get('name', 'tool')}]")
    return " ".join(p.strip() for p in parts if p.strip())


def _describe_agent_event(kind: str, p: Mapping[str, Any]) -> str:
    step = f"step {p.get('step')}: " if "step" in p else ""
    if kind == "agent_start":
        offered = p.get("tools")
        tools: list[Any] = offered if isinstance(offered, list) else []
        return (
            f"agent_start: model {p.get('model')} ({p.get('provider')}), "
            f"{len(tools)} tools: {', '.join(map(str, tools))}"
        )
    if kind == "model_response":
        said = _blocks_text(p.get("content"))
        return f"model_response: {step}{p.get('stop_reason')}" + (
            f", {_short(said, 100)}" if said else ""
        )
    if kind == "tool_call":
        return f"tool_call: {step}{p.get('name')} {_short(p.get('input'), 100)}"
    if kind == "tool_result":
        mark = "error " if p.get("is_error") else ""
        said = _short(_blocks_text(p.get("content")), 100)
        return f"tool_result: {step}{p.get('name')} {mark}{said}"
    if kind == "usage":
        return (
            f"usage: {step}{p.get('input_tokens', 0)} in, {p.get('output_tokens', 0)} out "
            f"({p.get('model')})"
        )
    return kind


def _describe_event(frame_data: Mapping[str, Any]) -> str:
    kind = str(frame_data.get("type", "?"))
    payload = frame_data.get("payload")
    if kind == "log" and isinstance(payload, Mapping):
        return f"log: {_short(payload.get('lines', payload), 100)}"
    if kind == "started" and isinstance(payload, Mapping):
        return f"started (attempt {payload.get('attempt', '?')})"
    if isinstance(payload, Mapping) and kind in AGENT_EVENTS:
        return _describe_agent_event(kind, payload)
    return kind


def follow_to_end(
    client: PurasClient, job_id: str, on_event: Callable[[str], None] | None = None
) -> Mapping[str, Any]:
    """Follow the job's SSE stream; returns the final JobOut of its ``end`` frame."""
    for frame in api.stream_job(client, job_id):
        if frame.event == "model_delta":
            continue  # the model's text as it is generated; its model_response has it whole
        if frame.event == "end":
            final = frame.json()
            if not isinstance(final, Mapping):
                raise PurasError(f"the stream of {job_id} ended with {frame.data[:200]!r}")
            return final
        if on_event is not None:
            data = frame.json()
            on_event(_describe_event(data) if isinstance(data, Mapping) else frame.data)
    raise PurasError(f"the event stream of job {job_id} ended without its final state")


def _run_sync(
    client: PurasClient, label: str, skill: str, inputs: Mapping[str, Any], echo: Echo
) -> DemoResult:
    t0 = time.monotonic()
    job = api.submit_job(client, skill, inputs, wait=True, timeout=api.WAIT_MAX_S)
    if job.get("status") not in TERMINAL:
        # Still running when the gateway's wait ran out: keep going on the stream.
        echo(f"    still {job.get('status')} after {api.WAIT_MAX_S}s; following its events")
        job = follow_to_end(client, str(job["id"]), lambda e: echo(f"    · {e}"))
    return DemoResult(label, job, time.monotonic() - t0)


def _run_async(
    client: PurasClient, label: str, skill: str, inputs: Mapping[str, Any], echo: Echo
) -> DemoResult:
    """Submit without waiting, then follow the job's events to its end."""
    t0 = time.monotonic()
    queued = api.submit_job(client, skill, inputs)
    echo(f"    → {_short({k: queued.get(k) for k in ('id', 'skill', 'status')})}")
    final = follow_to_end(client, str(queued["id"]), lambda e: echo(f"    · {e}"))
    return DemoResult(label, final, time.monotonic() - t0)


def _push(client: PurasClient, examples: Path, name: str, echo: Echo) -> None:
    out = api.push_bundle(client, api.pack(examples / name), notes="./dev demo")
    skills = out.get("skills", []) if isinstance(out, Mapping) else []
    names = [s.get("name", s) if isinstance(s, Mapping) else s for s in skills]
    echo(f"  pushed examples/{name}: deployment {out.get('id')} with skills {', '.join(names)}")


def _report(results: list[DemoResult], echo: Echo) -> None:
    echo("")
    echo("Results")
    width = max(len(r.label) for r in results)
    for r in results:
        status = str(r.job.get("status"))
        mark = "ok " if r.ok else "!! "
        echo(
            f"  {mark}{r.label:<{width}}  {status:<9}  run {_duration(r.job):>7}  "
            f"round trip {r.round_trip_s * 1000:.0f} ms"
        )
        if r.ok:
            echo(f"       result: {_short(r.job.get('result'))}")
        else:
            echo(f"       error:  {_short(r.job.get('error'), 600)}")


def _demo_jobs(
    stack: Stack, examples: Path, echo: Echo, models: ModelSetup | None
) -> list[DemoResult]:
    results: list[DemoResult] = []
    echo("")
    echo("examples/quickstart")
    quick = stack.bootstrap_project("quickstart")
    echo(f"  project {quick.project_id} with $10 of credit and an API key")
    with stack.client(quick.api_key) as client:
        _push(client, examples, "quickstart", echo)

        echo("  echo, async: POST /v1/jobs returns at once with the queued job")
        t0 = time.monotonic()
        queued = api.submit_job(client, "echo", {"text": "hello from ./dev demo"})
        echo(f"    → {_short({k: queued.get(k) for k in ('id', 'skill', 'status')})}")
        echo(f"    then GET /v1/jobs/{queued['id']}/stream follows it live:")
        final = follow_to_end(client, str(queued["id"]), lambda e: echo(f"    · {e}"))
        results.append(DemoResult("echo (async)", final, time.monotonic() - t0))

        echo("  echo, sync: POST /v1/jobs?wait=true answers once the job has ended")
        results.append(_run_sync(client, "echo (sync)", "echo", {"text": "hi"}, echo))

        if models is not None:
            echo("  hello, agentic: SKILL.md as system prompt, the model ends with set_output;")
            echo("    every model response and tool call is an event on its stream:")
            results.append(
                _run_async(client, "hello (agent)", "hello", {"prompt": HELLO_PROMPT}, echo)
            )

    echo("")
    echo("examples/image-tools")
    tools = stack.bootstrap_project("image-tools")
    echo(f"  project {tools.project_id}")
    with stack.client(tools.api_key) as client:
        _push(client, examples, "image-tools", echo)
        png = gradient_png(64, 48)
        echo(f"  image-info, sync, on a {len(png)}-byte 64x48 PNG sent inline as a data URL.")
        echo(
            "    The push built the deployment's venv first (Pillow from PyPI, per its\n"
            "    requirements.txt); every run reuses it."
        )
        results.append(
            _run_sync(
                client,
                "image-info (sync)",
                "image-info",
                {"image": {"data": png_data_url(png)}},
                echo,
            )
        )
        if models is not None:
            echo("  caption, agentic: the same PNG attached for the model to see")
            echo("    (inputs.attachments: base64 with its media_type)")
            attachment = {
                "base64": base64.b64encode(png).decode("ascii"),
                "media_type": "image/png",
            }
            results.append(
                _run_async(
                    client,
                    "caption (agent)",
                    "caption",
                    {"prompt": CAPTION_PROMPT, "attachments": [attachment]},
                    echo,
                )
            )
    return results


def run_demo(
    root: Path, *, echo: Echo = click.echo, environ: Mapping[str, str] | None = None
) -> int:
    """0 when every demo job succeeded; 1 otherwise; 130 when interrupted.

    ``environ`` (the process environment by default) says which model provider, if
    any, the agentic examples use."""
    examples = root / "examples"
    missing = [n for n in EXAMPLES if not (examples / n / "skills").is_dir()]
    if missing:
        raise PurasError(
            f"the demo pushes examples/{' and examples/'.join(missing)}, "
            f"which {'is' if len(missing) == 1 else 'are'} missing under {examples}"
        )
    work = Path(tempfile.mkdtemp(prefix="puras-demo-"))
    keep_logs = True

    def progress(msg: str) -> None:
        echo(f"[demo] {msg}")

    models = choose_models(os.environ if environ is None else environ)
    # Throwaway data: Postgres without fsync starts and writes faster.
    stack = Stack(
        work,
        fsync=False,
        progress=progress,
        env=models.stack_env(work) if models is not None else None,
    )
    with terminate_as_interrupt():
        try:
            t0 = time.monotonic()
            stack.start()
            progress(f"stack up in {time.monotonic() - t0:.1f}s")
            if models is not None:
                progress(models.description)
            with stack.explain_failures("a service of the demo stack stopped"):
                results = _demo_jobs(stack, examples, echo, models)
            _report(results, echo)
            if models is None:
                echo("")
                echo(ENABLE_HINT)
            ok = all(r.ok for r in results)
            keep_logs = not ok
            if not ok:
                echo(f"\nsome demo jobs did not succeed; service logs: {stack.logs_dir}")
            return 0 if ok else 1
        except KeyboardInterrupt:
            echo("\ninterrupted; stopping the stack")
            keep_logs = False
            return 130
        finally:
            with ignoring_interrupts():
                progress("stopping the stack")
                stack.stop()
                # Keep the logs of a run that went wrong (they are what explains it); the
                # data (Postgres, nats store, drive, venvs) is never worth keeping.
                for child in work.iterdir():
                    if not (keep_logs and child.name == "logs"):
                        if child.is_dir():
                            shutil.rmtree(child, ignore_errors=True)
                        else:
                            child.unlink(missing_ok=True)
                if not keep_logs:
                    shutil.rmtree(work, ignore_errors=True)
                else:
                    echo(f"[demo] logs kept in {stack.logs_dir}")
