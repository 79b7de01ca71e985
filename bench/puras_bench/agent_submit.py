"""From submit to the first model request, on the dev stack.

A dev stack (as ``./dev bench`` starts it) whose runner's Anthropic endpoint is the
scripted fake of the providers' HTTP APIs (``tests/fake_providers.py``, on a thread of
this process): each sync ``POST /v1/jobs?wait=true`` of the bench project's agentic
skill ``agent`` is timed from just before the request to the moment the fake has the
model request in hand (``perf_counter`` on both sides: one process). The fake answers
at once with ``set_output``, so the job ends right after and the next one starts on a
quiet stack. What lies between the two: the gateway's checks and its submit command,
the scheduler's queueing and dispatch, the runner taking the work item, recording
``job.started`` and ``job.agent_start``, the system prompt, the first message, and the
SDK's streamed request over loopback HTTP.

For comparison in the same run (no peer has an agent loop): the bench's deterministic
no-op job, sync, on the same stack.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from puras_bench.agent_loop import latency_with_p95
from puras_bench.ours import started_stack

__all__ = ["measure_submit_to_first_model_request"]

TESTS = Path(__file__).resolve().parents[2] / "tests"


def measure_submit_to_first_model_request(
    n: int, warmup: int, log: Callable[[str], None], env: dict[str, str] | None = None
) -> dict[str, Any]:
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))  # the scripted fake lives with the tests
    from fake_providers import FakeProviders, RecordedRequest, Reply, reply_tool

    arrivals: list[float] = []
    lock = threading.Lock()

    def answer(request: RecordedRequest) -> Reply:
        with lock:
            arrivals.append(time.perf_counter())
        return reply_tool("set_output", {"answer": "ok"})

    out: dict[str, Any] = {"n": n, "warmup": warmup}
    with FakeProviders.in_thread() as fake:
        fake.anthropic.respond_with(answer)
        stack_env = {
            "ANTHROPIC_BASE_URL": fake.anthropic_base_url,
            "ANTHROPIC_API_KEY": "bench-not-a-key",
            **(env or {}),
        }
        with (
            started_stack(stack_env, log) as ours,
            httpx.Client(base_url=ours.stack.api_base, headers=ours.auth, timeout=90) as http,
        ):
            first: list[float] = []
            total: list[float] = []
            for i in range(warmup + n):
                before = len(arrivals)
                t0 = time.perf_counter()
                r = http.post(
                    "/v1/jobs",
                    params={"wait": "true", "timeout": "60"},
                    json={"skill": "agent", "inputs": {"prompt": f"job {i}"}},
                )
                t1 = time.perf_counter()
                job = r.json()
                if job.get("status") != "succeeded" or job.get("result") != {"answer": "ok"}:
                    raise RuntimeError(f"bench agent job answered {r.status_code}: {job}")
                with lock:
                    got = arrivals[before:]
                if len(got) != 1:
                    raise RuntimeError(f"{len(got)} model requests for one job, not 1")
                if i >= warmup:
                    first.append(got[0] - t0)
                    total.append(t1 - t0)
            out["submit_to_first_model_request_ms"] = latency_with_p95(first)
            out["agent_job_round_trip_ms"] = latency_with_p95(total)
            log(
                f"    submit → first model request p50 "
                f"{out['submit_to_first_model_request_ms']['p50_ms']:.2f} ms, p95 "
                f"{out['submit_to_first_model_request_ms']['p95_ms']:.2f} ms; whole agent job "
                f"p50 {out['agent_job_round_trip_ms']['p50_ms']:.2f} ms"
            )
            # The deterministic path on the same stack, in the same run.
            noop: list[float] = []
            for i in range(warmup + n):
                t0 = time.perf_counter()
                r = http.post(
                    "/v1/jobs",
                    params={"wait": "true", "timeout": "60"},
                    json={"skill": "noop", "inputs": {"x": i}},
                )
                if r.json().get("status") != "succeeded":
                    raise RuntimeError(f"bench no-op job answered {r.status_code}: {r.text}")
                if i >= warmup:
                    noop.append(time.perf_counter() - t0)
            out["deterministic_noop_round_trip_ms"] = latency_with_p95(noop)
            log(
                f"    deterministic no-op job, sync, same stack: p50 "
                f"{out['deterministic_noop_round_trip_ms']['p50_ms']:.2f} ms"
            )
    return out
