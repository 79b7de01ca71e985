"""JSON Schema helpers: schema checks with paths, instance validation, caching (K3, K4, K6)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from puras_common import schemas
from puras_common.schemas import (
    InvalidSchema,
    check_schema,
    find_schema_issue,
    format_path,
    validate_instance,
)

ECHO: dict[str, Any] = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "n": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["text"],
}


def test_valid_schema() -> None:
    assert check_schema(ECHO) is None


def test_boolean_schema_is_valid() -> None:
    assert check_schema(True) is None


def test_invalid_type_names_its_path() -> None:
    message = check_schema({"type": "object", "properties": {"text": {"type": "strin"}}})
    assert message is not None
    assert message.startswith(
        "properties.text.type: 'strin' is not valid under any of the given schemas"
    )
    assert "string" in message  # the hint lists the real type names


def test_wrong_keyword_shape_names_its_path() -> None:
    assert check_schema({"required": "text"}) == "required: 'text' is not of type 'array'"


def test_array_index_in_path() -> None:
    issue = find_schema_issue({"allOf": [{"type": "nope"}]})
    assert issue is not None
    assert issue.path == "allOf[0].type"


def test_odd_property_name_is_quoted() -> None:
    message = check_schema({"properties": {"a b": {"type": 1}}})
    assert message is not None
    assert message.startswith('properties["a b"].type:')


def test_bad_regex_is_caught_at_check_time() -> None:
    message = check_schema({"properties": {"x": {"pattern": "[unclosed"}}})
    assert message is not None
    assert message.startswith("properties.x.pattern:")


def test_non_schema_root() -> None:
    message = check_schema(["type", "object"])
    assert message is not None
    assert "is not of type 'object', 'boolean'" in message


def test_local_refs_resolve() -> None:
    schema = {
        "$defs": {"name": {"type": "string"}},
        "properties": {"who": {"$ref": "#/$defs/name"}},
    }
    assert check_schema(schema) is None
    assert validate_instance(schema, {"who": 3}) == "inputs.who: 3 is not of type 'string'"


def test_dangling_local_ref_is_refused() -> None:
    message = check_schema({"properties": {"who": {"$ref": "#/$defs/missing"}}})
    assert message is not None
    assert message.startswith("properties.who.$ref: cannot resolve '#/$defs/missing'")


def test_remote_ref_is_refused_not_fetched() -> None:
    message = check_schema({"$ref": "https://example.com/schema.json"})
    assert message is not None
    assert "cannot resolve 'https://example.com/schema.json'" in message


def test_ref_inside_instance_data_is_not_a_reference() -> None:
    schema = {"const": {"$ref": "#/nowhere"}, "x-puras": {"$ref": "#/nowhere"}}
    assert check_schema(schema) is None


def test_playground_metadata_is_ignored_by_validation() -> None:
    schema = {
        "type": "object",
        "properties": {
            "image": {
                "type": "string",
                "contentMediaType": "image/png",
                "x-puras": {"widget": "image", "accept": ["image/png"], "whatever": 1},
            }
        },
        "x-puras": {"unknown": True},
    }
    assert check_schema(schema) is None
    assert validate_instance(schema, {"image": "not an image at all"}) is None
    assert validate_instance(schema, {"image": 5}) == "inputs.image: 5 is not of type 'string'"


def test_format_is_an_annotation_only() -> None:
    assert validate_instance({"type": "string", "format": "email"}, "not an email") is None


def test_type_error_names_the_field() -> None:
    assert validate_instance(ECHO, {"text": 123}) == "inputs.text: 123 is not of type 'string'"


def test_missing_required_names_the_root() -> None:
    assert validate_instance(ECHO, {}) == "inputs: 'text' is a required property"


def test_nested_array_index() -> None:
    message = validate_instance(ECHO, {"text": "a", "n": [1, "x"]})
    assert message == "inputs.n[1]: 'x' is not of type 'integer'"


def test_valid_instance() -> None:
    assert validate_instance(ECHO, {"text": "hi", "n": [1, 2]}) is None


def test_custom_root() -> None:
    message = validate_instance(ECHO, {"text": 1}, root="result")
    assert message == "result.text: 1 is not of type 'string'"


def test_long_values_are_truncated() -> None:
    message = validate_instance(ECHO, {"text": "x" * 100_000})
    assert message is None
    message = validate_instance({"type": "integer"}, "x" * 100_000)
    assert message is not None
    assert len(message) <= len("inputs: ") + schemas.MAX_MESSAGE_CHARS
    assert message.endswith("…")


def test_invalid_schema_raises_on_validate() -> None:
    with pytest.raises(InvalidSchema, match="strin"):
        validate_instance({"type": "strin"}, {})


def test_validators_are_compiled_once_per_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[object] = []
    real = Draft202012Validator

    def counting(schema: Any) -> Any:
        built.append(schema)
        return real(schema)

    schemas._validator_for.cache_clear()
    monkeypatch.setattr(schemas, "Draft202012Validator", counting)
    try:
        same_other_order = {
            "required": ["text"],
            "properties": {"text": {"type": "string"}},
            "type": "object",
        }
        first = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
        for _ in range(3):
            assert validate_instance(first, {"text": 1}) is not None
            assert validate_instance(same_other_order, {"text": "ok"}) is None
        assert len(built) == 1
        validate_instance({"type": "string"}, "x")
        assert len(built) == 2
    finally:
        schemas._validator_for.cache_clear()


def test_validator_cache_is_bounded() -> None:
    assert schemas._validator_for.cache_info().maxsize == schemas.VALIDATOR_CACHE_SIZE


def test_format_path() -> None:
    assert format_path("inputs", []) == "inputs"
    assert format_path("inputs", ["a", 0, "b c", "$ref"]) == 'inputs.a[0]["b c"].$ref'
    assert format_path("", ["a", "b"]) == "a.b"
