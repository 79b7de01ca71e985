"""skill.yaml that tries to crash deploy-time validation (Z9): every one is a Problem."""

from __future__ import annotations

import io
import zipfile

import pytest

from puras_common.manifest import BundleInvalid, Problem, validate_bundle
from puras_common.schemas import MAX_SCHEMA_DEPTH, find_schema_issue, validate_instance

MAIN = "def run(inputs):\n    return {}\n"


def problems_of(skill_yaml: str | bytes) -> list[Problem]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("skills/x/skill.yaml", skill_yaml)
        zf.writestr("skills/x/main.py", MAIN)
    with pytest.raises(BundleInvalid) as ei:
        validate_bundle(buf.getvalue())
    return ei.value.problems


def deep_items(levels: int) -> str:
    inner = "{type: string}"
    for _ in range(levels):
        inner = "{type: array, items: " + inner + "}"
    return inner


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ('entrypoint: main.py:run\ndescription: "a\\0b"\n', "description", "NUL"),
        ('entrypoint: main.py:run\ndescription: "\\uD800"\n', "description", "surrogate"),
        ('entrypoint: main.py:run\n"k\\0": 1\n', '["k\\u0000"]', "key"),
        (
            "entrypoint: main.py:run\ninput_schema:\n  type: object\n  properties:\n"
            '    t: {type: string, default: "\\0"}\n',
            "input_schema.properties.t.default",
            "NUL",
        ),
    ],
)
def test_unstorable_text_is_a_problem_naming_the_field(
    text: str, field: str, fragment: str
) -> None:
    [p] = problems_of(text)
    assert p.field == field
    assert fragment in p.message


def test_a_raw_nul_byte_is_a_yaml_problem() -> None:
    [p] = problems_of(b"entrypoint: main.py:run\ndescription: a\x00b\n")
    assert "#x0000" in p.message


def test_a_schema_deeper_than_the_limit_names_the_field() -> None:
    [p] = problems_of(f"entrypoint: main.py:run\ninput_schema: {deep_items(80)}\n")
    assert p.field is not None
    assert p.field.startswith("input_schema.items.items")
    assert f"deeper than {MAX_SCHEMA_DEPTH}" in p.message


@pytest.mark.parametrize("levels", [300, 20_000])
def test_yaml_nested_beyond_the_limit_is_a_problem_not_a_recursion_error(levels: int) -> None:
    [p] = problems_of(f"entrypoint: main.py:run\ninput_schema: {deep_items(levels)}\n")
    assert "nested deeper than 100 levels" in p.message
    assert "line 2" in p.message
    [p] = problems_of("entrypoint: main.py:run\nx: " + "[" * levels + "]" * levels + "\n")
    assert "nested deeper than 100 levels" in p.message


def test_billion_laughs_is_a_problem() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    text = "entrypoint: main.py:run\ninput_schema:\n  x-puras:\n"
    text += "\n".join("    " + line for line in lines) + "\n"
    [p] = problems_of(text)
    assert "aliases" in p.message


def test_aliases_nesting_deeper_than_the_file_shows_are_a_problem() -> None:
    chain = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]" for i in range(1, 20)]
    text = "entrypoint: main.py:run\ninput_schema:\n  x-puras:\n"
    text += "\n".join("    " + line for line in chain) + "\n"
    [p] = problems_of(text)
    assert "nested deeper than 100" in p.message


def test_schema_helpers_never_raise_recursion_errors() -> None:
    schema: dict[str, object] = {"type": "string"}
    for _ in range(5000):
        schema = {"not": schema}
    issue = find_schema_issue(schema)
    assert issue is not None
    assert "deeper than" in issue.message
    recursive = {
        "$defs": {
            "n": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/$defs/n"}}]}
        },
        "$ref": "#/$defs/n",
    }
    value: object = "x"
    for _ in range(2000):
        value = [value]
    message = validate_instance(recursive, value, root="inputs")
    assert message is not None
    assert message.startswith("inputs")
