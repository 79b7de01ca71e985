"""Log capping and batching (J5, R3)."""

from __future__ import annotations

from puras_runner.domain.logs import LogBatch, LogCollector


def _lines(batches: list[LogBatch]) -> list[tuple[str, str]]:
    return [(b.stream, line) for b in batches for line in b.lines]


def test_lines_split_across_chunks_are_joined() -> None:
    c = LogCollector(1000)
    c.feed("stdout", b"hel")
    assert not c.has_ready()
    c.feed("stdout", b"lo\nwor")
    assert _lines(c.drain()) == [("stdout", "hello")]
    c.feed("stdout", b"ld\r\n")
    assert _lines(c.drain()) == [("stdout", "world")]


def test_consecutive_lines_of_a_stream_form_one_batch() -> None:
    c = LogCollector(1000)
    c.feed("stdout", b"a\nb\n")
    c.feed("stdout", b"c\n")
    c.feed("stderr", b"oops\n")
    c.feed("stdout", b"d\n")
    batches = c.drain()
    assert [(b.stream, b.lines) for b in batches] == [
        ("stdout", ["a", "b", "c"]),
        ("stderr", ["oops"]),
        ("stdout", ["d"]),
    ]
    assert c.drain() == []


def test_finish_flushes_a_last_line_without_newline() -> None:
    c = LogCollector(1000)
    c.feed("stderr", b"no newline")
    assert c.drain() == []
    assert _lines(c.finish()) == [("stderr", "no newline")]


def test_output_beyond_the_cap_is_dropped_and_counted() -> None:
    c = LogCollector(10)
    c.feed("stdout", b"12345\n")  # 6 bytes
    c.feed("stdout", b"67890abc\n")  # 4 kept ("6789"), 5 dropped
    c.feed("stderr", b"more\n")  # all dropped
    assert c.kept_bytes == 10
    assert c.dropped_bytes == 5 + 5
    assert c.truncated
    assert _lines(c.finish()) == [("stdout", "12345"), ("stdout", "6789")]


def test_a_long_line_without_newline_is_capped_too() -> None:
    c = LogCollector(100)
    for _ in range(1000):
        c.feed("stdout", b"x" * 50)
    assert c.kept_bytes == 100
    lines = _lines(c.finish())
    assert lines == [("stdout", "x" * 100)]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    c = LogCollector(100)
    c.feed("stdout", "é".encode()[:1] + b"\n")
    assert _lines(c.drain()) == [("stdout", "\ufffd")]


def test_multibyte_character_split_between_chunks_survives() -> None:
    c = LogCollector(100)
    data = "héllo\n".encode()
    c.feed("stdout", data[:2])
    c.feed("stdout", data[2:])
    assert _lines(c.drain()) == [("stdout", "héllo")]


def test_mask_is_applied_to_each_line() -> None:
    c = LogCollector(100, mask=lambda s: s.replace("secret", "***"))
    c.feed("stdout", b"my secret\n")
    assert _lines(c.drain()) == [("stdout", "my ***")]


def test_zero_cap_keeps_nothing() -> None:
    c = LogCollector(0)
    c.feed("stdout", b"a\n")
    assert c.finish() == []
    assert c.truncated
