"""From what the engine saw to how the job ends (R1, R3, K3)."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any

from puras_common.schemas import validate_instance
from puras_runner.domain.outcome import (
    BadReturn,
    ExitStatus,
    Failed,
    ImportFailed,
    Raised,
    Returned,
    RunFacts,
    RunLimits,
    Succeeded,
    TooLarge,
    decide_outcome,
)

LIMITS = RunLimits(timeout_s=5, memory_limit_mb=256, max_result_bytes=100, cpu_limit_s=10)


def _check(schema: Mapping[str, Any], instance: object) -> str | None:
    return validate_instance(schema, instance, root="result")


def _decide(facts: RunFacts, schema: dict[str, Any] | None = None) -> Succeeded | Failed:
    return decide_outcome(facts, LIMITS, output_schema=schema, check_schema=_check)


def _error(facts: RunFacts, schema: dict[str, Any] | None = None) -> str:
    outcome = _decide(facts, schema)
    assert isinstance(outcome, Failed)
    return outcome.error


def test_a_returned_dict_succeeds() -> None:
    assert _decide(RunFacts(report=Returned({"a": 1}, 7), exit=None)) == Succeeded({"a": 1})


def test_timeout_wins_over_a_report() -> None:
    facts = RunFacts(report=Returned({}, 2), exit=None, timed_out=True)
    assert _error(facts) == "timed out after 5s (wall-clock limit)"


def test_not_a_dict() -> None:
    assert _error(RunFacts(report=Returned([1], 3), exit=None)) == (
        "run() must return a dict (a JSON object), it returned list"
    )


def test_result_over_the_limit() -> None:
    assert "result is too large: 101 bytes" in _error(RunFacts(report=Returned({}, 101), exit=None))
    assert "result is too large: 5000 bytes" in _error(RunFacts(report=TooLarge(5000), exit=None))
    overflow = RunFacts(report=None, exit=None, result_overflow=70000)
    assert "more than 70000 bytes" in _error(overflow)


def test_output_schema_violation_names_the_field() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert _error(RunFacts(report=Returned({"n": "x"}, 9), exit=None), schema) == (
        "output does not match output_schema: result.n: 'x' is not of type 'integer'"
    )
    assert _decide(RunFacts(report=Returned({"n": 1}, 7), exit=None), schema) == Succeeded({"n": 1})


def test_exception() -> None:
    tb = "Traceback (most recent call last):\n  File \"main.py\", line 1, in run\nKeyError: 'k'"
    err = _error(RunFacts(report=Raised("KeyError", "'k'", tb), exit=ExitStatus(code=0)))
    assert err.startswith("KeyError: 'k'\n\nTraceback (most recent call last):\n")


def test_memory_error_mentions_the_limit() -> None:
    err = _error(RunFacts(report=Raised("MemoryError", "", ""), exit=None))
    assert err == "MemoryError: memory limit of 256 MB reached"


def test_import_and_bad_return() -> None:
    err = _error(RunFacts(report=ImportFailed("main.py", "SyntaxError", "bad", ""), exit=None))
    assert err == "SyntaxError: bad (while importing main.py)"
    assert _error(RunFacts(report=BadReturn("not JSON"), exit=None)) == "not JSON"


def test_no_report_falls_back_to_the_exit_status() -> None:
    killed = RunFacts(report=None, exit=ExitStatus(signal=signal.SIGKILL))
    assert _error(killed).startswith("killed by signal SIGKILL (memory limit 256 MB")
    assert "exited with code 3" in _error(RunFacts(report=None, exit=ExitStatus(code=3)))
    assert "template process ended" in _error(RunFacts(report=None, exit=None))


def test_exit_status_from_wait_status() -> None:
    assert ExitStatus.from_wait_status(0) == ExitStatus(code=0)
    assert ExitStatus.from_wait_status(3 << 8) == ExitStatus(code=3)
    assert ExitStatus.from_wait_status(signal.SIGKILL) == ExitStatus(signal=signal.SIGKILL)
