"""What the gateway refuses before routing, and in bodies (Z9): pure checks."""

from __future__ import annotations

import pytest

from puras_gateway.app.admin import CreateProjectBody
from puras_gateway.domain.edge import check_request_target
from puras_gateway.domain.errors import ApiError
from puras_gateway.domain.requests import (
    check_text_field,
    parse_idempotency_key,
    parse_json_body,
    parse_submit_body,
)


def refused(raw: bytes) -> ApiError:
    with pytest.raises(ApiError) as ei:
        parse_submit_body(raw)
    assert ei.value.status == 400
    return ei.value


@pytest.mark.parametrize(
    ("raw", "code", "fragments"),
    [
        (b'{"skill":"echo","inputs":{"t":"a\\u0000"}}', "invalid_body", ("inputs.t", "NUL")),
        (b'{"skill":"echo","inputs":{"a":[{"b":"\\u0000"}]}}', "invalid_body", ("inputs.a[0].b",)),
        (b'{"skill":"echo","inputs":{"\\u0000":1}}', "invalid_body", ("key", "NUL")),
        (b'{"skill":"e\\u0000","inputs":{}}', "invalid_body", ("skill",)),
        (b'{"skill":"echo","inputs":{"t":"\\ud800"}}', "invalid_json", ("inputs.t", "surrogate")),
        (b'{"skill":"echo","inputs":{"t":"\\udc00x"}}', "invalid_json", ("surrogate",)),
        (b'{"skill":"echo","inputs":{"t":"\xff"}}', "invalid_json", ("UTF-8", "0xff")),
        (b'{"skill":"echo","inputs":{"t":"\xed\xa0\x80"}}', "invalid_json", ("UTF-8",)),
    ],
)
def test_unstorable_text_in_a_job_body_is_400_naming_where(
    raw: bytes, code: str, fragments: tuple[str, ...]
) -> None:
    e = refused(raw)
    assert e.code == code
    for f in fragments:
        assert f in e.message, e.message


def deep(levels: int) -> bytes:
    return b'{"skill":"echo","inputs":{"d":' + b"[" * levels + b"]" * levels + b"}}"


def test_inputs_nest_at_most_64_levels() -> None:
    assert parse_submit_body(deep(63)).inputs["d"] is not None
    for levels in (64, 500, 100_000):
        e = refused(deep(levels))
        assert "64" in e.message
    # Brackets inside strings do not count as levels.
    body = parse_submit_body(b'{"skill":"echo","inputs":{"t":"' + b"[" * 200 + b'"}}')
    assert body.inputs["t"] == "[" * 200


def test_ordinary_escapes_pass() -> None:
    body = parse_submit_body(b'{"skill":"echo","inputs":{"t":"caf\\u00e9 \\ud83d\\ude00"}}')
    assert body.inputs["t"] == "café 😀"


def test_other_json_bodies_get_the_same_checks() -> None:
    with pytest.raises(ApiError) as ei:
        parse_json_body(b'{"name":"a\\u0000"}', CreateProjectBody)
    assert "name" in ei.value.message
    with pytest.raises(ApiError) as ei:
        parse_json_body(b'{"name":' + b"[" * 5000 + b"]" * 5000 + b"}", CreateProjectBody)
    assert ei.value.status == 400
    assert parse_json_body(b'{"name":"p"}', CreateProjectBody).name == "p"


def test_text_fields_and_idempotency_keys() -> None:
    with pytest.raises(ApiError) as ei:
        check_text_field("notes", "a\x00b")
    assert "`notes`" in ei.value.message
    assert "NUL" in ei.value.message
    check_text_field("notes", "line one\nline two")
    with pytest.raises(ApiError) as ei:
        parse_idempotency_key("k\x01")
    assert "U+0001" in ei.value.message
    assert parse_idempotency_key("0b5e-uuid") == "0b5e-uuid"


HEADERS = [(b"host", b"x"), (b"authorization", b"Bearer k")]


def check(
    path: bytes = b"/v1/jobs", query: bytes = b"", headers: list[tuple[bytes, bytes]] = HEADERS
) -> ApiError | None:
    return check_request_target(path, query, headers)


def test_clean_requests_pass() -> None:
    assert check() is None
    assert check(b"/v1/jobs/0193-ab/events", b"status=queued&limit=10&cursor=abc%3D") is None
    assert check(b"/v1/drive/list", b"prefix=caf%C3%A9/&x=a+b") is None
    assert check(headers=[(b"user-agent", b"a\tb"), (b"x-latin", b"\xe9")]) is None


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        (b"/v1/jobs/a%00b", "NUL"),
        (b"/v1/jobs/a%0Ab/events", "U+000A"),
        (b"/v1/jobs/%ff", "UTF-8"),
        (b"/v1/jobs/%ed%a0%80", "UTF-8"),
        (b"/v1/keys/p%7f", "U+007F"),
    ],
)
def test_path_segments_must_be_printable_utf8(path: bytes, fragment: str) -> None:
    e = check(path)
    assert e is not None
    assert (e.status, e.code) == (400, "invalid_request")
    assert "path segment" in e.message
    assert fragment in e.message


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        (b"status=a%00b", "`status`"),
        (b"limit=1&cursor=%ff", "`cursor`"),
        (b"prefix=a%0d%0aX-Injected:%201", "`prefix`"),
        (b"na%00me=1", "query parameter name"),
    ],
)
def test_query_values_must_be_printable_utf8(query: bytes, fragment: str) -> None:
    e = check(query=query)
    assert e is not None
    assert (e.status, e.code) == (400, "invalid_query")
    assert fragment in e.message


def test_header_values_must_be_one_printable_line() -> None:
    e = check(headers=[*HEADERS, (b"idempotency-key", b"a\x00b")])
    assert e is not None
    assert "`idempotency-key`" in e.message
    assert "NUL" in e.message
