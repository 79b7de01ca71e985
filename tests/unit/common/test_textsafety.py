"""Text every store can hold (Z9): the one module gateway, manifest and runner share."""

from __future__ import annotations

import json
from typing import Any

import pytest

from puras_common.textsafety import (
    MAX_JSON_DEPTH,
    REPLACEMENT,
    NestingTooDeep,
    escape_json,
    escape_text,
    find_control,
    find_unsafe,
    unsafe_char,
)


def nest(depth: int, leaf: Any = 1) -> Any:
    v = leaf
    for _ in range(depth):
        v = {"a": v}
    return v


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("a\x00b", "a NUL character (U+0000) at index 1"),
        ("\ud800", "a lone surrogate (U+D800) at index 0"),
        ("x\udfff", "a lone surrogate (U+DFFF) at index 1"),
    ],
)
def test_unsafe_characters_are_named_with_their_place(text: str, found: str) -> None:
    assert unsafe_char(text) == found


@pytest.mark.parametrize("text", ["", "plain", "tab\tnewline\n", "é 😀 \ufffd \\u0000", "\x7f"])
def test_storable_text_passes(text: str) -> None:
    assert unsafe_char(text) is None
    assert escape_text(text) is text


def test_single_line_values_also_refuse_control_characters() -> None:
    assert find_control("a\nb") == "a control character (U+000A) at index 1"
    assert find_control("a\x7f") == "a control character (U+007F) at index 1"
    assert find_control("a\tb") is not None
    assert find_control("a\tb", allow_tab=True) is None
    assert find_control("a\x00b", allow_tab=True) == "a NUL character (U+0000) at index 1"


def test_find_unsafe_names_the_path_of_values_and_keys() -> None:
    issue = find_unsafe({"a": [1, {"b": "x\x00"}]}, root="inputs")
    assert issue is not None
    assert issue.path == "inputs.a[1].b"
    assert "NUL" in issue.message
    assert "base64" in issue.message  # says what to do
    issue = find_unsafe({"ok": 1, "bad key\x00": 2}, root="inputs")
    assert issue is not None
    # The key is shown escaped, never raw.
    assert issue.path == 'inputs["bad key\\u0000"]'
    assert "key" in issue.message
    issue = find_unsafe({"t": "\ud83d"}, root="inputs")
    assert issue is not None
    assert "surrogate" in issue.message
    assert "UTF-8" in issue.message


def test_find_unsafe_reports_the_first_problem_in_document_order() -> None:
    issue = find_unsafe({"a": "\x00", "b": "\x00"}, root="r")
    assert issue is not None
    assert issue.path == "r.a"


def test_depth_is_bounded_without_recursion() -> None:
    assert find_unsafe(nest(MAX_JSON_DEPTH), root="inputs") is None
    issue = find_unsafe(nest(MAX_JSON_DEPTH + 1), root="inputs")
    assert issue is not None
    assert f"deeper than {MAX_JSON_DEPTH}" in issue.message
    # Far beyond the interpreter's recursion limit, still an answer.
    assert find_unsafe(nest(100_000), root="inputs") is not None
    assert find_unsafe(nest(100_000), max_depth=None) is None
    long_path = find_unsafe(nest(1000), root="inputs")
    assert long_path is not None
    assert len(long_path.path) <= 201


def test_escape_json_replaces_in_strings_and_keys_and_keeps_the_rest() -> None:
    value = {"t": "a\x00b", "k\x00": [1, "\udc80", None, True, 2.5], "same": "ok"}
    out = escape_json(value)
    assert out == {
        "t": f"a{REPLACEMENT}b",
        f"k{REPLACEMENT}": [1, REPLACEMENT, None, True, 2.5],
        "same": "ok",
    }
    json.dumps(out).encode("utf-8")  # storable now
    clean = {"a": [1, {"b": "c"}]}
    assert escape_json(clean) is clean


def test_escape_keeps_the_length_of_text() -> None:
    assert len(escape_text("a\x00b\ud800")) == 4


def test_escape_json_refuses_deep_values_naming_where() -> None:
    assert escape_json(nest(MAX_JSON_DEPTH)) == nest(MAX_JSON_DEPTH)
    with pytest.raises(NestingTooDeep) as ei:
        escape_json({"x": nest(MAX_JSON_DEPTH)}, root="result")
    assert ei.value.path.startswith("result.x.a.a")
