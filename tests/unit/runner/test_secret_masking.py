"""X2: a secret's value a job prints is masked (``***``) in its log events wherever the
output's chunks split it, line by line for a value that spans lines, and where the
log's cap or a tool result's cut halves it."""

from __future__ import annotations

import pytest

from puras_runner.domain import errors
from puras_runner.domain.logs import LogCollector

SECRET = "sk-live-9f8e7d6c5b4a"
PEM = "-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0B\nAQEFAASCAUEwggE9AgEAAkEA\n-----END KEY-----"


def _collector(values: list[str], cap: int = 1 << 20) -> LogCollector:
    return LogCollector(
        cap,
        mask=lambda line: errors.mask_secrets(line, values),
        mask_cut=lambda line: errors.mask_cut_end(line, values),
    )


def _lines(c: LogCollector) -> list[str]:
    return [line for batch in c.finish() for line in batch.lines]


@pytest.mark.parametrize("split", range(1, len(SECRET)))
def test_a_value_split_across_two_chunks_is_masked(split: int) -> None:
    data = f"token={SECRET} ok\n".encode()
    at = len(b"token=") + split
    c = _collector([SECRET])
    c.feed("stdout", data[:at])
    assert not c.has_ready()  # the line is not complete: nothing of it went out
    c.feed("stdout", data[at:])
    assert c.drain()[0].lines == ["token=*** ok"]


def test_a_value_fed_byte_by_byte_is_masked() -> None:
    c = _collector([SECRET])
    for b in f"a {SECRET} b\nnext {SECRET}".encode():
        c.feed("stderr", bytes([b]))
    assert _lines(c) == ["a *** b", "next ***"]


def test_a_multi_line_value_is_masked_line_by_line() -> None:
    c = _collector([PEM])
    c.feed("stdout", f"key:\n{PEM}\ndone\n".encode())
    out = _lines(c)
    assert out == ["key:", "***", "***", "***", "***", "done"]
    assert not any(part in "\n".join(out) for part in PEM.splitlines())


def test_the_same_value_on_both_streams_is_masked_on_each() -> None:
    c = _collector([SECRET])
    c.feed("stdout", SECRET[:5].encode())
    c.feed("stderr", f"{SECRET}\n".encode())
    c.feed("stdout", f"{SECRET[5:]}\n".encode())
    assert [(b.stream, b.lines) for b in c.finish()] == [
        ("stderr", ["***"]),
        ("stdout", ["***"]),
    ]


def test_a_value_the_cap_cuts_in_half_is_masked() -> None:
    head = b"value: "
    c = _collector([SECRET], cap=len(head) + 9)
    c.feed("stdout", head + SECRET.encode() + b"\n")
    lines = _lines(c)
    assert lines == ["value: ***"]
    assert SECRET[:9] not in lines[0]


def test_a_cut_line_that_ends_in_no_secret_is_kept() -> None:
    c = _collector([SECRET], cap=8)
    c.feed("stdout", b"harmless words\n")
    assert _lines(c) == ["harmless"]


def test_short_values_are_not_masked() -> None:
    assert errors.mask_secrets("a 1 b abc", ["1", "abc"]) == "a 1 b abc"
    assert errors.mask_cut_end("xx ab", ["abcdef"]) == "xx ab"


def test_the_longest_value_is_masked_first() -> None:
    assert errors.mask_secrets("xx abcdefgh yy", ["abcd", "abcdefgh"]) == "xx *** yy"


def test_a_tail_that_starts_inside_a_value_is_masked() -> None:
    assert errors.mask_cut_start(f"{SECRET[6:]} rest", [SECRET]) == "*** rest"
    assert errors.mask_cut_start("plain rest", [SECRET]) == "plain rest"


def test_masked_forms_include_each_line_of_a_multi_line_value() -> None:
    forms = errors.masked_forms([PEM, SECRET, "ab"])
    assert forms[0] == PEM
    assert "MIIBVwIBADANBgkqhkiG9w0B" in forms
    assert SECRET in forms
    assert "ab" not in forms
