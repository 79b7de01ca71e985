"""The one drive-path normalizer (``puras_common.drive_paths``, SPEC D9): an example for
every rule, then properties over arbitrary strings."""

from __future__ import annotations

import posixpath
import unicodedata
from urllib.parse import quote, unquote

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from puras_common.drive_paths import (
    MAX_DECODE_LEVELS,
    MAX_PATH_BYTES,
    MAX_SEGMENT_BYTES,
    DrivePathError,
    normalize_file_path,
    normalize_path,
    normalize_prefix,
)

# -- examples ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("uploads/a.jpg", "uploads/a.jpg"),
        ("a", "a"),
        ("a//b", "a/b"),
        ("./a/./b", "a/b"),
        ("a/b/.", "a/b"),
        ("...", "..."),  # a name of three dots is a name
        ("..a/b..", "..a/b.."),
        ("100%.txt", "100%.txt"),  # literal: not percent-encoded
        ("a%20b.txt", "a%20b.txt"),
        ("résumé/😀.png", "résumé/😀.png"),
        ("dir with space/ x ", "dir with space/ x "),
    ],
)
def test_a_usable_path_is_made_canonical(raw: str, canonical: str) -> None:
    assert normalize_file_path(raw) == canonical


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("..", "'..' segment"),
        ("../etc/passwd", "'..' segment"),
        ("a/../../b", "'..' segment"),
        ("a/..", "'..' segment"),
        ("%2e%2e/secret", "'..' segment once percent-decoded"),
        ("%2E%2E%2Fsecret", "'..' segment once percent-decoded"),
        ("a/%252e%252e/b", "'..' segment once percent-decoded"),
        ("a%2F..%2Fb", "'..' segment once percent-decoded"),
        ("/etc/passwd", "starts with /"),
        ("//a", "starts with /"),
        ("%2Fetc", "starts with / once percent-decoded"),
        ("./%2Fetc", "starts with / once percent-decoded"),
        ("a\\b", "backslash"),
        ("..\\..\\x", "backslash"),
        ("a%5Cb", "backslash"),
        ("a\x00b", "NUL"),
        ("a%00b", "NUL"),
        ("a\nb", "U+000A"),
        ("a\x7fb", "U+007F"),
        ("a\x85b", "U+0085"),  # C1
        ("a\u2028b", "U+2028"),
        ("a%0Ab", "U+000A"),
        ("a\ud800b", "U+D800"),  # a lone surrogate has no UTF-8 form
        (quote(quote(quote(quote("%2e%2e")))), "more than 4 times"),
    ],
)
def test_a_dangerous_path_is_refused_saying_why(raw: str, says: str) -> None:
    with pytest.raises(DrivePathError, match="is refused") as caught:
        normalize_path(raw)
    assert says in str(caught.value)
    assert repr(raw)[:20] in str(caught.value) or len(raw) > 80


def test_percent_encoding_is_refused_at_any_depth_up_to_the_limit() -> None:
    dots = ".."
    for _ in range(MAX_DECODE_LEVELS):
        dots = quote(dots, safe="")
        if dots == "..":  # quote leaves dots alone: encode them by hand once
            dots = "%2E%2E"
        with pytest.raises(DrivePathError, match=r"'\.\.' segment"):
            normalize_path(f"a/{dots}/b")


def test_a_path_from_a_raw_url_is_decoded_once() -> None:
    assert normalize_file_path("a%20b/c%2Fd.txt", percent_encoded=True) == "a b/c/d.txt"
    assert normalize_file_path("100%25.txt", percent_encoded=True) == "100%.txt"
    with pytest.raises(DrivePathError, match=r"'\.\.' segment"):
        normalize_file_path("%2e%2e/x", percent_encoded=True)
    with pytest.raises(DrivePathError, match="not UTF-8"):
        normalize_file_path("a%ffb", percent_encoded=True)


@pytest.mark.parametrize("raw", ["", "/", "uploads/", "a/b//", ".", "./"])
def test_a_folder_is_not_a_file(raw: str) -> None:
    if raw.startswith("/"):
        with pytest.raises(DrivePathError, match="starts with /"):
            normalize_file_path(raw)
        return
    with pytest.raises(DrivePathError, match="names a folder, not a file"):
        normalize_file_path(raw)


@pytest.mark.parametrize(
    ("raw", "prefix", "path"),
    [
        ("", "", ""),
        (".", "", ""),
        ("uploads", "uploads/", "uploads"),
        ("uploads/", "uploads/", "uploads"),
        ("a//b/", "a/b/", "a/b"),
    ],
)
def test_a_prefix_names_a_folder(raw: str, prefix: str, path: str) -> None:
    assert normalize_prefix(raw) == prefix
    got = normalize_path(raw)
    assert got.path == path
    assert got.prefix == prefix


def test_a_trailing_slash_says_folder() -> None:
    assert normalize_path("a/b/").folder
    assert normalize_path("").folder
    assert not normalize_path("a/b").folder


def test_lengths_are_bounded() -> None:
    name = "x" * MAX_SEGMENT_BYTES
    assert normalize_file_path(name) == name
    with pytest.raises(DrivePathError, match=f"longer than {MAX_SEGMENT_BYTES} bytes"):
        normalize_file_path(name + "x")
    # Bytes, not characters: "é" is two.
    with pytest.raises(DrivePathError, match=f"longer than {MAX_SEGMENT_BYTES} bytes"):
        normalize_file_path("é" * (MAX_SEGMENT_BYTES // 2 + 1))
    deep = "/".join(["abcdefghi"] * (MAX_PATH_BYTES // 10))
    assert normalize_file_path(deep) == deep
    with pytest.raises(DrivePathError, match=f"longer than {MAX_PATH_BYTES} bytes"):
        normalize_file_path(deep + "/abcdefghij")


def test_a_non_string_is_refused() -> None:
    with pytest.raises(DrivePathError, match="is a string"):
        normalize_path(b"a.txt")  # type: ignore[arg-type]


# -- properties ----------------------------------------------------------------------------

# Paths built from the characters that matter: separators, dots, percent signs and hex
# digits (so encodings form), backslashes, controls, and ordinary letters.
_ALPHABET = st.sampled_from([*"ab./%2eEfF5cC0", "\\", "\x00", "\n", "\x7f", "é", "😀", "\u2028"])
paths = st.one_of(
    st.text(_ALPHABET, max_size=40),
    st.text(max_size=40),
    st.lists(st.sampled_from(["a", "b", ".", "..", "", "%2e%2e", "%2F", "x%2e"]), max_size=8).map(
        "/".join
    ),
)


def _accepted(raw: str, *, percent_encoded: bool = False) -> str | None:
    try:
        return normalize_path(raw, percent_encoded=percent_encoded).path
    except DrivePathError:
        return None


def _every_decoding(path: str) -> list[str]:
    forms = [path]
    for _ in range(MAX_DECODE_LEVELS + 2):
        forms.append(unquote(forms[-1]))
    return forms


@given(paths, st.booleans())
@example("./%2Fetc", False)  # dropping '.' brings an encoded / to the front
@example("%2e/%2e%2e", True)
@settings(max_examples=400)
def test_what_is_accepted_never_escapes_the_root(raw: str, encoded: bool) -> None:
    path = _accepted(raw, percent_encoded=encoded)
    if path is None:
        return
    for form in _every_decoding(path):
        joined = posixpath.normpath(posixpath.join("/root", form))
        assert joined == "/root" or joined.startswith("/root/"), (raw, form)
        assert ".." not in form.split("/")
        assert not form.startswith("/")


@given(paths, st.booleans())
@example("./%2Fetc", False)  # dropping '.' brings an encoded / to the front
@example("%2e/%2e%2e", True)
@settings(max_examples=400)
def test_normalizing_is_idempotent(raw: str, encoded: bool) -> None:
    got = _accepted(raw, percent_encoded=encoded)
    if got is None:
        return
    assert normalize_path(got).path == got
    assert normalize_prefix(normalize_prefix(got)) == normalize_prefix(got)


@given(paths, st.booleans())
def test_the_canonical_form_has_no_forbidden_character(raw: str, encoded: bool) -> None:
    path = _accepted(raw, percent_encoded=encoded)
    if path is None:
        return
    for form in _every_decoding(path):
        assert "\\" not in form
        assert not any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in form)
    segments = path.split("/") if path else []
    assert all(s not in ("", ".", "..") for s in segments)
    assert len(path.encode()) <= MAX_PATH_BYTES
    assert all(len(s.encode()) <= MAX_SEGMENT_BYTES for s in segments)


@given(
    st.lists(
        st.text(st.characters(codec="utf-8", categories=("L", "N")), min_size=1),
        min_size=1,
        max_size=6,
    )
)
def test_plain_names_pass_unchanged(segments: list[str]) -> None:
    path = "/".join(segments)
    if len(path.encode()) > MAX_PATH_BYTES or any(
        len(s.encode()) > MAX_SEGMENT_BYTES for s in segments
    ):
        return
    assert normalize_file_path(path) == path
    assert normalize_file_path("./" + path.replace("/", "//")) == path
