from __future__ import annotations

import pytest

from puras_gateway.app.admin import GrantBody, grant_micros
from puras_gateway.domain.errors import ApiError
from puras_gateway.domain.requests import (
    Cursor,
    parse_list_params,
    parse_submit_body,
    parse_submit_mode,
)


def test_submit_body_parses_whatever_the_content_type() -> None:
    b = parse_submit_body(b'{"skill":"echo","inputs":{"text":"hi"}}')
    assert (b.skill, b.inputs) == ("echo", {"text": "hi"})
    assert parse_submit_body(b'{"skill":"echo"}').inputs == {}


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        (b"", "invalid_body", "empty"),
        (b"{", "invalid_json", "not valid JSON"),
        (b'{"inputs": {}}', "invalid_body", "skill"),
        (b'{"skill": "echo", "inputs": [1]}', "invalid_body", "inputs"),
        (b'{"skill": 3}', "invalid_body", "skill"),
        (b'{"skill": "  "}', "invalid_body", "non-empty"),
        # J1: any other top-level field is a 400 naming it.
        (b'{"skill": "echo", "type": "agentic"}', "invalid_body", "unknown field `type`"),
        (b'{"skill": "echo", "max_cost_micros": 0}', "invalid_body", "max_cost_micros"),
        (b'{"skill": "echo", "max_cost_micros": -5}', "invalid_body", "max_cost_micros"),
        (b'{"skill": "echo", "max_cost_micros": 2.5}', "invalid_body", "max_cost_micros"),
        (b'{"skill": "echo", "max_cost_micros": "9"}', "invalid_body", "max_cost_micros"),
        (b'{"skill": "echo", "max_cost_micros": true}', "invalid_body", "max_cost_micros"),
    ],
)
def test_malformed_bodies_are_400_with_a_reason(raw: bytes, code: str, fragment: str) -> None:
    with pytest.raises(ApiError) as ei:
        parse_submit_body(raw)
    assert ei.value.status == 400
    assert ei.value.code == code
    assert fragment in ei.value.message


def test_a_cost_cap_is_a_positive_whole_number_of_micros() -> None:
    assert parse_submit_body(b'{"skill": "echo", "max_cost_micros": 250000}').max_cost_micros == (
        250_000
    )
    assert parse_submit_body(b'{"skill": "echo"}').max_cost_micros is None


def test_modes() -> None:
    assert parse_submit_mode(None, None, None, 30).kind == "async"
    m = parse_submit_mode("true", None, "5", 30)
    assert (m.kind, m.timeout_s) == ("wait", 5.0)
    assert parse_submit_mode("true", None, None, 30).timeout_s == 30
    assert parse_submit_mode(None, "1", None, 30).kind == "stream"
    for wait, stream, timeout in (
        ("true", "true", None),
        ("true", None, "0"),
        ("true", None, "61"),
        ("true", None, "soon"),
        ("maybe", None, None),
    ):
        with pytest.raises(ApiError) as ei:
            parse_submit_mode(wait, stream, timeout, 30)
        assert ei.value.status == 400


def test_list_params_and_cursor() -> None:
    p = parse_list_params(None, None, None)
    assert (p.status, p.limit, p.cursor) == (None, 25, None)
    assert parse_list_params("running", "200", None).limit == 200
    for st, lim, cur in (
        ("done", None, None),
        (None, "0", None),
        (None, "201", None),
        (None, "x", None),
        (None, None, "garbage!"),
    ):
        with pytest.raises(ApiError):
            parse_list_params(st, lim, cur)
    from datetime import UTC, datetime

    c = Cursor(created_at=datetime(2026, 1, 1, tzinfo=UTC), id="abc")
    assert Cursor.decode(c.encode()) == c


def test_list_params_filter_by_a_skill_name() -> None:
    assert parse_list_params(None, None, None).skill is None
    assert parse_list_params(None, None, None, " ").skill is None
    assert parse_list_params("failed", None, None, "echo-2_b").skill == "echo-2_b"
    for bad in ("Echo", "-x", "a b", "a/b", "x" * 201):
        with pytest.raises(ApiError) as ei:
            parse_list_params(None, None, None, bad)
        assert ei.value.status == 400
        assert "`skill`" in str(ei.value.message)


def test_grant_amounts_are_exact_integer_micros() -> None:
    assert grant_micros(GrantBody(usd=0.1)) == 100_000
    assert grant_micros(GrantBody(usd="12.5")) == 12_500_000
    assert grant_micros(GrantBody(micros=7)) == 7
    for body in (
        GrantBody(),
        GrantBody(usd=1, micros=1),
        GrantBody(usd=0),
        GrantBody(usd=-1),
        GrantBody(usd=1e-9),
        GrantBody(usd="abc"),
        GrantBody(micros=0),
    ):
        with pytest.raises(ApiError):
            grant_micros(body)
