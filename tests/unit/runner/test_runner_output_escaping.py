"""A job's own output is made storable before any event holds it (Z9)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from puras_common.schemas import validate_instance
from puras_common.textsafety import REPLACEMENT
from puras_runner.domain.logs import LogCollector
from puras_runner.domain.outcome import (
    BadReturn,
    Failed,
    ImportFailed,
    Raised,
    Returned,
    RunFacts,
    RunLimits,
    Succeeded,
    decide_outcome,
)

LIMITS = RunLimits(timeout_s=5, memory_limit_mb=256, max_result_bytes=10_000, cpu_limit_s=10)
R = REPLACEMENT


def _check(schema: Mapping[str, Any], instance: object) -> str | None:
    return validate_instance(schema, instance, root="result")


def decide(report: Any, schema: dict[str, Any] | None = None) -> Succeeded | Failed:
    return decide_outcome(
        RunFacts(report=report, exit=None), LIMITS, output_schema=schema, check_schema=_check
    )


def test_nul_and_surrogates_in_a_result_are_replaced_in_values_and_keys() -> None:
    out = decide(Returned({"t": "a\x00b", "k\x00": ["\ud800", 1]}, 30))
    assert out == Succeeded({"t": f"a{R}b", f"k{R}": [R, 1]})


def test_the_escaped_result_is_what_output_schema_judges() -> None:
    length = {"type": "object", "properties": {"t": {"type": "string", "maxLength": 3}}}
    assert decide(Returned({"t": "a\x00b"}, 10), length) == Succeeded({"t": f"a{R}b"})
    exact = {"type": "object", "properties": {"t": {"const": "a\x00b"}}}
    out = decide(Returned({"t": "a\x00b"}, 10), exact)
    assert isinstance(out, Failed)
    assert out.error.startswith("output does not match output_schema: result.t")
    assert "\x00" not in out.error


def test_a_result_nested_too_deep_fails_the_job_naming_where() -> None:
    v: Any = 1
    for _ in range(70):
        v = [v]
    out = decide(Returned({"v": v}, 200))
    assert isinstance(out, Failed)
    assert "nested deeper than 64" in out.error
    assert "result.v[0][0]" in out.error


def test_errors_from_job_code_are_storable() -> None:
    raised = decide(Raised("ValueError", "x\x00y", "Traceback (most recent call last):\n  x\x00\n"))
    assert isinstance(raised, Failed)
    assert raised.error.startswith(f"ValueError: x{R}y")
    assert "\x00" not in raised.error
    imp = decide(ImportFailed("main.py", "Error\ud800", "m\x00", ""))
    assert isinstance(imp, Failed)
    assert "\x00" not in imp.error
    assert "\ud800" not in imp.error
    bad = decide(BadReturn("bad \x00"))
    assert bad == Failed(f"bad {R}")


def test_every_failed_outcome_is_storable_however_it_is_built() -> None:
    assert Failed("prep\x00 failed\udc80").error == f"prep{R} failed{R}"


def test_log_lines_have_no_nul_and_no_undecodable_bytes() -> None:
    c = LogCollector(1000)
    c.feed("stdout", b"a\x00b\nbad \xff\xfe\n")
    c.feed("stderr", b"e\x00")
    batches = c.finish()
    assert [(b.stream, b.lines) for b in batches] == [
        ("stdout", [f"a{R}b", f"bad {R}{R}"]),
        ("stderr", [f"e{R}"]),
    ]
