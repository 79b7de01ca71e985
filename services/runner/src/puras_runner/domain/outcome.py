"""From what happened to a job's process to how the job ended.

The engine gathers facts (what the child reported over its result pipe, how it exited,
whether the runner had to kill it); :func:`decide_outcome` turns them into a
:class:`Succeeded` or :class:`Failed` outcome with the user-facing error (R1, R3, K3).

Everything an outcome carries came from the job's own code, so it is made storable here,
before any event holds it (Z9): NUL and lone surrogates in the result and in the error
become U+FFFD (:func:`puras_common.textsafety.escape_text` says why that character),
and a result nested deeper than :data:`~puras_common.textsafety.MAX_JSON_DEPTH` fails
the job.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from puras_common.textsafety import MAX_JSON_DEPTH, NestingTooDeep, escape_json, escape_text
from puras_runner.domain import errors

__all__ = [
    "BadReturn",
    "ChildReport",
    "ExitStatus",
    "Failed",
    "ImportFailed",
    "Outcome",
    "Raised",
    "Returned",
    "RunFacts",
    "RunLimits",
    "Succeeded",
    "TooLarge",
    "decide_outcome",
]


# -- what the child reports over its result pipe ------------------------------------


@dataclass(frozen=True, slots=True)
class Returned:
    """``run(inputs)`` returned; ``value`` is the decoded JSON it wrote."""

    value: Any
    size: int
    """Bytes of the JSON encoding of ``value``."""


@dataclass(frozen=True, slots=True)
class Raised:
    """``run(inputs)`` raised."""

    type_name: str
    message: str
    traceback: str


@dataclass(frozen=True, slots=True)
class ImportFailed:
    """The skill's module or entrypoint function could not be loaded in the template."""

    module_file: str
    type_name: str
    message: str
    traceback: str


@dataclass(frozen=True, slots=True)
class BadReturn:
    """The return value was not a dict, or not JSON-serializable (the child says which)."""

    message: str


@dataclass(frozen=True, slots=True)
class TooLarge:
    """The child measured its JSON result above the limit and did not send it."""

    size: int


ChildReport = Returned | Raised | ImportFailed | BadReturn | TooLarge


# -- how the process ended -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """A decoded wait status: exactly one of ``code`` and ``signal`` is set."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait_status(cls, status: int) -> ExitStatus:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.waitstatus_to_exitcode(status))


@dataclass(frozen=True, slots=True)
class RunLimits:
    """The limits a run was given (they appear in error messages)."""

    timeout_s: float
    memory_limit_mb: int
    max_result_bytes: int
    cpu_limit_s: float
    max_processes: int = 0
    """The job's process limit (its cgroup's ``pids.max``; 0: none enforced)."""


@dataclass(frozen=True, slots=True)
class RunFacts:
    """Everything the engine observed about one run."""

    report: ChildReport | None
    """What the child wrote on its result pipe (``None``: nothing, or not decodable)."""
    exit: ExitStatus | None
    """How the child exited (``None``: not known, e.g. its template died)."""
    timed_out: bool = False
    """The runner killed the process group at the wall-clock limit."""
    result_overflow: int = 0
    """Bytes the child tried to send over the result pipe beyond what the runner reads
    (0: none); the runner stopped reading and killed it."""
    oom_killed: bool = False
    """The job's cgroup hit its memory limit and the kernel killed a process of it."""
    pids_exhausted: bool = False
    """A fork of the job was refused at its cgroup's process limit."""


# -- outcomes ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Succeeded:
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    """Storable text whatever it was built from: NUL and lone surrogates (from an
    exception message, a traceback, a build's output) are replaced on construction."""

    def __post_init__(self) -> None:
        # Every way a job can fail builds one of these, the handler's own included.
        object.__setattr__(self, "error", escape_text(self.error))


Outcome = Succeeded | Failed

SchemaCheck = Callable[[Mapping[str, Any], object], str | None]
"""``(schema, instance) -> None | message naming result.<field>``."""


def decide_outcome(
    facts: RunFacts,
    limits: RunLimits,
    *,
    output_schema: Mapping[str, Any] | None,
    check_schema: SchemaCheck,
) -> Outcome:
    """The job's outcome. A timeout wins over anything the child managed to report; a
    job that hit its cgroup's memory or process limit says so."""
    outcome = _decide_outcome(facts, limits, output_schema=output_schema, check_schema=check_schema)
    if isinstance(outcome, Succeeded) or facts.timed_out:
        return outcome
    if facts.oom_killed:
        if facts.report is None:
            return Failed(errors.cgroup_memory_error(limits.memory_limit_mb))
        return Failed(outcome.error + "\n\n" + errors.cgroup_memory_note(limits.memory_limit_mb))
    if facts.pids_exhausted:
        return Failed(outcome.error + "\n\n" + errors.process_limit_note(limits.max_processes))
    return outcome


def _decide_outcome(
    facts: RunFacts,
    limits: RunLimits,
    *,
    output_schema: Mapping[str, Any] | None,
    check_schema: SchemaCheck,
) -> Outcome:
    if facts.timed_out:
        return Failed(errors.timeout_error(limits.timeout_s))
    if facts.result_overflow:
        return Failed(
            errors.result_too_large_error(
                facts.result_overflow, limits.max_result_bytes, at_least=True
            )
        )
    report = facts.report
    if isinstance(report, Returned):
        if not isinstance(report.value, dict):
            return Failed(
                errors.bad_return_error(
                    f"run() must return a dict (a JSON object), it returned "
                    f"{type(report.value).__name__}"
                )
            )
        if report.size > limits.max_result_bytes:
            return Failed(errors.result_too_large_error(report.size, limits.max_result_bytes))
        try:
            result = escape_json(report.value, root="result")
        except NestingTooDeep as exc:
            return Failed(errors.result_too_deep_error(exc.path, MAX_JSON_DEPTH))
        # The escaped result is what gets stored and what clients read, so it is the one
        # validated: a stored result always matches output_schema. U+FFFD replaces one
        # character by one, so length limits judge both alike.
        if output_schema is not None:
            problem = check_schema(output_schema, result)
            if problem is not None:
                return Failed(errors.output_schema_error(problem))
        return Succeeded(result)
    if isinstance(report, Raised):
        if report.type_name == "MemoryError":
            return Failed(
                errors.memory_error(report.message, report.traceback, limits.memory_limit_mb)
            )
        return Failed(errors.exception_error(report.type_name, report.message, report.traceback))
    if isinstance(report, ImportFailed):
        return Failed(
            errors.import_error(
                report.module_file, report.type_name, report.message, report.traceback
            )
        )
    if isinstance(report, BadReturn):
        return Failed(errors.bad_return_error(report.message))
    if isinstance(report, TooLarge):
        return Failed(errors.result_too_large_error(report.size, limits.max_result_bytes))
    # No report: the exit status is all there is to say.
    if facts.exit is None:
        return Failed(errors.lost_process_error())
    if facts.exit.signal is not None:
        return Failed(
            errors.signal_error(
                facts.exit.signal,
                memory_limit_mb=limits.memory_limit_mb,
                cpu_limit_s=limits.cpu_limit_s,
            )
        )
    code = facts.exit.code if facts.exit.code is not None else -1
    if code < 0:
        # waitstatus_to_exitcode gives -signum for a signal; kept for completeness.
        return Failed(
            errors.signal_error(
                -code, memory_limit_mb=limits.memory_limit_mb, cpu_limit_s=limits.cpu_limit_s
            )
        )
    return Failed(errors.exit_code_error(code))
