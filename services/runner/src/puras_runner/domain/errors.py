"""The error strings a failed job carries (``JobOut.error``), in one place.

Users read these in the API, the dashboard and the CLI, so each one says what happened
and, where it helps, which limit or setting was involved (SPEC R1, R3). Every function
here is pure: it formats facts the engine gathered.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from typing import Final

__all__ = [
    "MIN_MASKED_SECRET_CHARS",
    "TRACEBACK_TAIL_LINES",
    "PreparationFailed",
    "bad_return_error",
    "bundle_error",
    "cgroup_memory_error",
    "cgroup_memory_note",
    "exception_error",
    "exit_code_error",
    "format_seconds",
    "import_error",
    "lost_process_error",
    "mask_cut_end",
    "mask_cut_start",
    "mask_secrets",
    "masked_forms",
    "memory_error",
    "output_schema_error",
    "process_limit_note",
    "result_too_deep_error",
    "result_too_large_error",
    "runner_lost_error",
    "signal_error",
    "timeout_error",
    "traceback_tail",
    "unsupported_kind_error",
    "venv_error",
    "venv_timeout_error",
]

TRACEBACK_TAIL_LINES: Final = 20
"""How many trailing lines of a traceback an error keeps (R1: "traceback tail")."""

MIN_MASKED_SECRET_CHARS: Final = 4
"""Secret values shorter than this are not masked: masking every ``1`` or ``ab`` in a
log would destroy the output while protecting nothing worth protecting."""

RUNNER_LOST: Final = "runner lost"


class PreparationFailed(Exception):
    """A job cannot run (its bundle, venv or template process); ``str()`` is its error."""


def format_seconds(seconds: float) -> str:
    """``5`` for whole seconds, ``2.5`` otherwise (no ``5.0`` in user-facing text)."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:g}"


def traceback_tail(traceback_text: str, lines: int = TRACEBACK_TAIL_LINES) -> str:
    """The traceback with only its last ``lines`` lines, under the usual header.

    The last lines are the ones that matter (the innermost frames and the exception);
    an elision marker says that frames were left out.
    """
    body = traceback_text.rstrip("\n").splitlines()
    header = "Traceback (most recent call last):"
    if body and body[0].startswith(header):
        body = body[1:]
    if len(body) > lines:
        body = ["  ...", *body[-lines:]]
    return "\n".join([header, *body])


def exception_error(type_name: str, message: str, traceback_text: str) -> str:
    """``"<ExcType>: <message>"`` then a blank line and the traceback tail (R1)."""
    head = f"{type_name}: {message}" if message else type_name
    if not traceback_text.strip():
        return head
    return f"{head}\n\n{traceback_tail(traceback_text)}"


def memory_error(message: str, traceback_text: str, memory_limit_mb: int) -> str:
    """A ``MemoryError`` raised in user code: almost always the address-space limit."""
    detail = f"memory limit of {memory_limit_mb} MB reached"
    if message:
        detail = f"{message} ({detail})"
    return exception_error("MemoryError", detail, traceback_text)


def import_error(module_file: str, type_name: str, message: str, traceback_text: str) -> str:
    """The skill's module (or its entrypoint function) could not be loaded."""
    return exception_error(
        type_name,
        f"{message} (while importing {module_file})"
        if message
        else f"while importing {module_file}",
        traceback_text,
    )


def timeout_error(seconds: float) -> str:
    return f"timed out after {format_seconds(seconds)}s (wall-clock limit)"


def signal_error(signum: int, *, memory_limit_mb: int, cpu_limit_s: float) -> str:
    """The job's process was ended by a signal it did not send itself on purpose."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = str(signum)
    text = f"killed by signal {name}"
    if signum == signal.SIGKILL:
        return f"{text} (memory limit {memory_limit_mb} MB exceeded, or killed from outside?)"
    if signum == signal.SIGXCPU:
        return f"{text} (CPU time limit of {format_seconds(cpu_limit_s)}s exceeded)"
    if signum == signal.SIGXFSZ:
        return f"{text} (file size limit exceeded)"
    if signum == signal.SIGSEGV:
        return f"{text} (segmentation fault, e.g. in a native extension or out of stack)"
    if signum == signal.SIGABRT:
        return f"{text} (the process aborted, e.g. a failed assertion in native code)"
    return text


def venv_timeout_error(seconds: float) -> str:
    return (
        "could not prepare the deployment's virtualenv: installing requirements.txt took "
        f"longer than {format_seconds(seconds)}s (the build time limit)"
    )


def cgroup_memory_error(memory_limit_mb: int) -> str:
    """The kernel killed the job at its cgroup's memory limit (all its processes count)."""
    return (
        f"memory limit of {memory_limit_mb} MB exceeded: the kernel killed the job's process "
        "(the limit counts every process the job started, and files it wrote to /tmp)"
    )


def cgroup_memory_note(memory_limit_mb: int) -> str:
    return (
        f"(the job reached its memory limit of {memory_limit_mb} MB: the kernel killed a "
        "process it started)"
    )


def process_limit_note(max_processes: int) -> str:
    return (
        f"(the job reached its limit of {max_processes} processes and threads: a fork was refused)"
    )


def exit_code_error(code: int) -> str:
    """The process ended without reporting a result (``os._exit``, a native crash...)."""
    return (
        f"the skill's process exited with code {code} without returning a result "
        "(did the code call os._exit or close its output?)"
    )


def lost_process_error() -> str:
    return (
        "the skill's process was lost: its template process ended while the job ran "
        "(it will be restarted for the next job)"
    )


def bad_return_error(message: str) -> str:
    """The return value was not a JSON-serializable dict (the child says which)."""
    return message


def output_schema_error(validator_message: str) -> str:
    return f"output does not match output_schema: {validator_message}"


def result_too_large_error(size: int, limit: int, *, at_least: bool = False) -> str:
    amount = f"more than {size}" if at_least else f"{size}"
    return (
        f"result is too large: {amount} bytes of JSON, over the {limit}-byte limit "
        "(store large outputs in the drive and return their drive_path)"
    )


def result_too_deep_error(path: str, max_depth: int) -> str:
    return (
        f"result is nested deeper than {max_depth} levels of objects and arrays (at "
        f"{path}): flatten it, or store it in the drive and return its drive_path"
    )


def runner_lost_error() -> str:
    """The exact text of a job failed after its runner disappeared (J11)."""
    return RUNNER_LOST


def bundle_error(message: str) -> str:
    return f"could not prepare the deployment bundle: {message}"


def unsupported_kind_error(skill: str, kind: str, entrypoint: str, runs: list[str]) -> str:
    """A skill of a kind no engine of this runner runs (a runner built with fewer engines)."""
    return (
        f"skill {skill!r} is {kind} (entrypoint {entrypoint}): this runner has no engine for "
        f"{kind} skills; it runs {', '.join(sorted(runs)) or 'none'}"
    )


def venv_error(what: str, exit_code: int, output_tail: str) -> str:
    tail = output_tail.strip()
    text = (
        f"could not prepare the deployment's virtualenv: {what} failed (uv exit code {exit_code})"
    )
    return f"{text}:\n{tail}" if tail else text


def masked_forms(values: Iterable[str]) -> list[str]:
    """What masking looks for: each value, and each line of a value that spans lines
    (a PEM key, a JSON credential), longest first.

    Logs are masked line by line, so a value printed across lines only ever shows there
    one line at a time; its lines are masked wherever they appear, as CI systems mask a
    multi-line secret's.
    """
    forms: set[str] = set()
    for value in values:
        forms.add(value)
        if "\n" in value or "\r" in value:
            forms.update(line.strip() for line in value.splitlines())
    return sorted((f for f in forms if len(f) >= MIN_MASKED_SECRET_CHARS), key=len, reverse=True)


def mask_secrets(text: str, values: Iterable[str]) -> str:
    """``text`` with every occurrence of a secret value replaced by ``***`` (X2).

    Longer values are masked first so a value containing another one is masked whole;
    a value that spans lines is also masked line by line (:func:`masked_forms`).
    """
    for value in masked_forms(values):
        if value in text:
            text = text.replace(value, "***")
    return text


def mask_cut_end(text: str, values: Iterable[str]) -> str:
    """``text`` that was cut short (a log at its cap) with a trailing start of a secret
    value masked too: what was cut off cannot be the rest of it, but the start alone is
    part of the secret all the same."""
    for value in masked_forms(values):
        head = value[:MIN_MASKED_SECRET_CHARS]
        # Only the last len(value) - 1 characters can hold a start cut short.
        at = text.find(head, max(0, len(text) - len(value) + 1))
        while at != -1:
            if value.startswith(text[at:]):
                return text[:at] + "***"
            at = text.find(head, at + 1)
    return text


def mask_cut_start(text: str, values: Iterable[str]) -> str:
    """``text`` whose start was cut off (the tail of an output) with a leading end of a
    secret value masked too (the mirror of :func:`mask_cut_end`)."""
    for value in masked_forms(values):
        tail = value[-MIN_MASKED_SECRET_CHARS:]
        # Only the first len(value) - 1 characters can hold an end cut short; the
        # longest such end is the one found last from the right.
        window = text[: len(value) - 1]
        at = window.rfind(tail)
        while at != -1:
            end = at + MIN_MASKED_SECRET_CHARS
            if value.endswith(text[:end]):
                return "***" + text[end:]
            at = window.rfind(tail, 0, end - 1)
    return text
