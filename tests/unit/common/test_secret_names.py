"""What a project secret may be called and hold (X1)."""

from __future__ import annotations

import pytest

from puras_common.secret_names import MAX_VALUE_BYTES, name_problem, value_problem


@pytest.mark.parametrize("name", ["API_KEY", "_X", "A", "OPENAI_API_KEY2", "S3_BUCKET"])
def test_env_var_names_are_accepted(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["api_key", "Api_Key", "MY.KEY", "1KEY", "MY-KEY", "A B", ""])
def test_other_names_are_refused_saying_what_a_name_may_be(name: str) -> None:
    problem = name_problem(name)
    assert problem is not None
    if name:
        assert "^[A-Z_][A-Z0-9_]*$" in problem


def test_a_refusal_suggests_a_valid_name() -> None:
    problem = name_problem("my.api-key")
    assert problem is not None
    assert "'MY_API_KEY'" in problem
    suggested = name_problem("1key")
    assert suggested is not None
    assert "'_1KEY'" in suggested


@pytest.mark.parametrize("name", ["PATH", "HOME", "PURAS_JOB_TOKEN", "PURAS_API_URL"])
def test_names_the_runner_sets_are_reserved(name: str) -> None:
    problem = name_problem(name)
    assert problem is not None
    assert "reserved" in problem


def test_a_long_name_is_refused() -> None:
    assert name_problem("A" * 129) is not None
    assert name_problem("A" * 128) is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "non-empty"),
        ("ab\x00cd", "NUL"),
        ("x" * (MAX_VALUE_BYTES + 1), "64 KiB"),
        ("\ud800abc", "surrogate"),
    ],
)
def test_values_that_cannot_be_an_env_var_are_refused_without_quoting_them(
    value: str, why: str
) -> None:
    problem = value_problem(value)
    assert problem is not None
    assert why in problem
    if value:
        assert value not in problem


def test_a_value_up_to_64_kib_and_multi_line_is_accepted() -> None:
    assert value_problem("-----BEGIN KEY-----\nabc\n-----END KEY-----\n") is None
    assert value_problem("é" * (MAX_VALUE_BYTES // 2)) is None
