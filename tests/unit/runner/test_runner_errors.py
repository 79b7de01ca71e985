"""The error strings a failed job shows (R1, R3)."""

from __future__ import annotations

import signal

import pytest

from puras_runner.domain import errors


def _traceback(frames: int) -> str:
    lines = ["Traceback (most recent call last):"]
    for i in range(frames):
        lines += [f'  File "/bundle/skills/s/main.py", line {i + 1}, in f{i}', f"    f{i + 1}()"]
    lines.append("ValueError: bad")
    return "\n".join(lines)


def test_exception_error_is_type_message_then_traceback() -> None:
    text = errors.exception_error("ValueError", "bad", _traceback(2))
    assert text.startswith("ValueError: bad\n\nTraceback (most recent call last):\n")
    assert 'File "/bundle/skills/s/main.py", line 2, in f1' in text
    assert text.endswith("ValueError: bad")


def test_exception_error_keeps_only_the_traceback_tail() -> None:
    text = errors.exception_error("ValueError", "bad", _traceback(50))
    body = text.split("\n\n", 1)[1].splitlines()
    assert body[0] == "Traceback (most recent call last):"
    assert body[1] == "  ..."
    assert len(body) == 2 + errors.TRACEBACK_TAIL_LINES
    assert body[-1] == "ValueError: bad"
    assert "in f0" not in text  # the outermost frames are the ones dropped


def test_exception_without_message_or_traceback() -> None:
    assert errors.exception_error("KeyboardInterrupt", "", "") == "KeyboardInterrupt"


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (5.0, "5s"), (2.5, "2.5s")])
def test_timeout_error(seconds: float, text: str) -> None:
    assert errors.timeout_error(seconds) == f"timed out after {text} (wall-clock limit)"


def test_signal_errors_say_which_signal_and_why() -> None:
    kill = errors.signal_error(signal.SIGKILL, memory_limit_mb=1024, cpu_limit_s=35)
    assert kill.startswith("killed by signal SIGKILL")
    assert "memory limit 1024 MB" in kill
    cpu = errors.signal_error(signal.SIGXCPU, memory_limit_mb=1024, cpu_limit_s=35)
    assert "SIGXCPU" in cpu
    assert "CPU time limit of 35s" in cpu
    assert "SIGSEGV" in errors.signal_error(signal.SIGSEGV, memory_limit_mb=1, cpu_limit_s=1)
    assert errors.signal_error(200, memory_limit_mb=1, cpu_limit_s=1) == "killed by signal 200"


def test_memory_error_names_the_limit() -> None:
    text = errors.memory_error("", "Traceback (most recent call last):\nMemoryError", 256)
    assert text.startswith("MemoryError: memory limit of 256 MB reached\n\n")


def test_import_error_names_the_file() -> None:
    text = errors.import_error("main.py", "ModuleNotFoundError", "No module named 'x'", "")
    assert text == "ModuleNotFoundError: No module named 'x' (while importing main.py)"


def test_runner_lost_is_exact() -> None:
    assert errors.runner_lost_error() == "runner lost"


def test_venv_error_carries_the_output_tail() -> None:
    text = errors.venv_error("installing requirements.txt", 1, "  error: nope  \n")
    assert text == (
        "could not prepare the deployment's virtualenv: installing requirements.txt failed "
        "(uv exit code 1):\nerror: nope"
    )


def test_result_too_large_says_both_sizes() -> None:
    text = errors.result_too_large_error(2_000_000, 1_048_576)
    assert "2000000 bytes" in text
    assert "1048576-byte limit" in text


def test_mask_secrets_masks_long_values_first_and_skips_tiny_ones() -> None:
    text = "token=abcd1234 short=ab other=abcd1234xyz"
    masked = errors.mask_secrets(text, ["abcd1234", "abcd1234xyz", "ab"])
    assert masked == "token=*** short=ab other=***"
