"""JSON Schema (Draft 2020-12) helpers: checking a skill's schemas, validating instances.

Skills declare ``input_schema`` / ``output_schema`` in their ``skill.yaml``. Deploy-time
validation checks the schemas themselves (:func:`check_schema`, K4); every submit and
every deterministic result is validated against them (:func:`validate_instance`, K3).

Playground metadata (``contentMediaType``, an ``x-puras`` block, any unknown keyword) is
kept verbatim by the caller and ignored here (K6): 2020-12 treats unknown keywords and
``contentMediaType`` as annotations, and no format assertion is switched on, so
``format: email`` is an annotation too.

Every schema is validated as Draft 2020-12 whatever its ``$schema`` says: one dialect
is what the playground and the docs describe.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from jsonschema_specifications import REGISTRY as SPECIFICATIONS
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

if TYPE_CHECKING:
    # ``referencing`` does not export its resolver type; its own typing module imports
    # it from here the same way.
    from referencing._core import Resolver

__all__ = [
    "MAX_SCHEMA_DEPTH",
    "InvalidSchema",
    "SchemaIssue",
    "check_schema",
    "find_schema_issue",
    "format_path",
    "validate_instance",
    "validation_problems",
]

VALIDATOR_CACHE_SIZE: Final = 1024
"""How many compiled validators are kept (least recently used are dropped)."""

MAX_SCHEMA_DEPTH: Final = 64
"""Deepest nesting of objects and arrays in a schema. The validators recurse several
frames per level (checking a schema against the meta-schema fails past ~150 levels),
so a schema is refused here, at deploy time, long before that: 64 levels hold 30 levels
of nested ``properties``, and recursive structures take a ``$ref`` at any depth."""

MAX_MESSAGE_CHARS: Final = 500
"""Longest validation message returned: the offending value is quoted in it, and a
megabyte of base64 that fails ``type: integer`` must not come back in a 422 body."""

_META_VALIDATOR: Final = Draft202012Validator(
    Draft202012Validator.META_SCHEMA,
    # The format checker applies to the *schema* here, not to instances: it is what
    # rejects ``pattern: "[a"`` (format "regex" in the meta-schema) at deploy time,
    # instead of a crash on the first submit.
    format_checker=Draft202012Validator.FORMAT_CHECKER,
)

_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*$")

_TYPE_HINT: Final = " (JSON Schema types: array, boolean, integer, null, number, object, string)"

# Keywords of the 2020-12 applicator, unevaluated and content vocabularies whose values
# are subschemas (one, a list of them, or a name -> subschema mapping). Walking only
# these finds every ``$ref`` the validator could follow, and never mistakes instance
# data (``const``, ``enum``, ``default``, ``examples``, ``x-puras``) for a reference.
_ONE_SUBSCHEMA: Final = frozenset(
    {
        "additionalProperties",
        "contains",
        "contentSchema",
        "else",
        "if",
        "items",
        "not",
        "propertyNames",
        "then",
        "unevaluatedItems",
        "unevaluatedProperties",
    }
)
_LIST_OF_SUBSCHEMAS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_MAP_OF_SUBSCHEMAS: Final = frozenset(
    {"$defs", "definitions", "dependentSchemas", "patternProperties", "properties"}
)


class SchemaIssue(NamedTuple):
    """What is wrong with a schema and where."""

    path: str
    """Dotted path inside the schema, e.g. ``properties.text.type`` (empty: the root)."""
    message: str
    """The validator's message, e.g. ``'strin' is not valid under any of ...``."""


class InvalidSchema(ValueError):
    """:func:`validate_instance` was handed a schema that :func:`check_schema` refuses."""


def format_path(root: str, path: Iterable[str | int]) -> str:
    """``root`` followed by ``path``: ``.name`` per key, ``[i]`` per array index.

    A key that is not a plain identifier is quoted (``["a b"]``) so the path stays
    unambiguous.
    """
    out = root
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENT.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def find_schema_issue(schema: object) -> SchemaIssue | None:
    """The first problem of ``schema`` as a Draft 2020-12 schema, or ``None``.

    Checks it against the meta-schema (including that every ``pattern`` compiles), then
    that every ``$ref`` / ``$dynamicRef`` resolves inside the schema itself: references
    to other documents are never fetched, so one that does not resolve locally would
    fail every validation later.
    """
    deep = _too_deep(schema, MAX_SCHEMA_DEPTH)
    if deep is not None:
        return SchemaIssue(
            format_path("", deep),
            f"the schema is nested deeper than {MAX_SCHEMA_DEPTH} levels of objects and "
            "arrays; flatten it, or describe a recursive structure with $defs and $ref",
        )
    try:
        error = best_match(_META_VALIDATOR.iter_errors(schema))
    except RecursionError:  # out of reach within MAX_SCHEMA_DEPTH; never a crash
        return SchemaIssue("", "the schema is nested too deeply to be checked; flatten it")
    if error is not None:
        message = error.message
        if error.path and error.path[-1] == "type" and error.validator in ("anyOf", "enum"):
            message += _TYPE_HINT
        return SchemaIssue(format_path("", error.path), _truncate(message))
    if isinstance(schema, Mapping):
        resource = DRAFT202012.create_resource(schema)
        resolver = SPECIFICATIONS.resolver_with_root(resource)
        return _first_unresolvable(schema, resolver, [])
    return None


def check_schema(schema: object) -> str | None:
    """``None`` when ``schema`` is a valid Draft 2020-12 schema, else one message.

    The message names where the problem is, e.g.
    ``properties.text.type: 'strin' is not valid under any of the given schemas ...``.
    """
    issue = find_schema_issue(schema)
    if issue is None:
        return None
    return f"{issue.path}: {issue.message}" if issue.path else issue.message


def validate_instance(
    schema: Mapping[str, Any] | bool, instance: object, *, root: str = "inputs"
) -> str | None:
    """``None`` when ``instance`` is valid against ``schema``, else ONE message.

    The message names the field of the best-matching error under ``root``, e.g.
    ``inputs.text: 123 is not of type 'string'`` or
    ``inputs: 'text' is a required property``. Compiled validators are cached by the
    schema's canonical JSON, so the same schema is compiled once. Raises
    :class:`InvalidSchema` if the schema itself is invalid (deploy-time validation
    keeps such schemas out of deployments).
    """
    validator = _validator(schema)
    try:
        error: ValidationError | None = best_match(validator.iter_errors(instance))
    except RecursionError:
        # A recursive schema ($ref) over a very deep instance: the API bounds inputs'
        # depth well below this, so only a value from elsewhere can get here.
        return f"{root}: is nested too deeply to be validated; flatten it"
    if error is None:
        return None
    return f"{format_path(root, error.path)}: {_truncate(error.message)}"


MAX_PROBLEMS: Final = 50
"""Most schema violations one answer lists (a wholly wrong payload could have thousands)."""


def validation_problems(
    schema: Mapping[str, Any] | bool, instance: object, *, root: str = "inputs"
) -> list[SchemaIssue]:
    """Every violation of ``schema`` by ``instance`` (at most :data:`MAX_PROBLEMS`).

    The best match (the one :func:`validate_instance` names) comes first, the others
    follow by path, so a client fixes them all in one round instead of one per call.
    Each ``path`` is rooted at ``root`` (``inputs.items[2].name``). Empty when valid.
    """
    validator = _validator(schema)
    try:
        errors = list(validator.iter_errors(instance))
    except RecursionError:
        return [SchemaIssue(root, "is nested too deeply to be validated; flatten it")]
    if not errors:
        return []
    best = best_match(errors)
    rest = sorted(
        (e for e in errors if e is not best),
        key=lambda e: (format_path(root, e.path), e.message),
    )
    out: list[SchemaIssue] = []
    seen: set[tuple[str, str]] = set()
    for e in [best, *rest] if best is not None else rest:
        issue = SchemaIssue(format_path(root, e.path), _truncate(e.message))
        if (issue.path, issue.message) not in seen:
            seen.add((issue.path, issue.message))
            out.append(issue)
        if len(out) >= MAX_PROBLEMS:
            break
    return out


_BY_IDENTITY_SIZE: Final = 1024
_by_identity: dict[int, tuple[object, Draft202012Validator]] = {}
"""The validator of a schema object seen before, by identity: the schemas checked on
the request path are the long-lived ones of a deployment's skills, and looking them up
by content means encoding the whole schema as JSON on every call. The entry keeps the
schema alive, so its id cannot be reused while it is here."""


def _validator(schema: Mapping[str, Any] | bool) -> Draft202012Validator:
    if isinstance(schema, bool):
        return _validator_for(_canonical(schema))
    hit = _by_identity.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    validator = _validator_for(_canonical(schema))
    if len(_by_identity) >= _BY_IDENTITY_SIZE:
        _by_identity.clear()
    _by_identity[id(schema)] = (schema, validator)
    return validator


def _canonical(schema: Mapping[str, Any] | bool) -> str:
    # sort_keys makes two dicts with the same content share one cache entry whatever
    # their key order (YAML-loaded vs JSON-decoded copies of one schema).
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=VALIDATOR_CACHE_SIZE)
def _validator_for(canonical: str) -> Draft202012Validator:
    schema = json.loads(canonical)
    problem = check_schema(schema)
    if problem is not None:
        raise InvalidSchema(f"invalid JSON Schema: {problem}")
    return Draft202012Validator(schema)


def _truncate(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def _too_deep(value: object, max_depth: int) -> list[str | int] | None:
    """The path of the first container nested deeper than ``max_depth``, or ``None``.

    Iterative, so it is safe on any input (the validators that come after it are not).
    """
    stack: list[tuple[object, list[str | int]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, Mapping):
            children: Iterable[tuple[str | int, object]] = node.items()
        elif isinstance(node, list | tuple):
            children = enumerate(node)
        else:
            continue
        if len(path) >= max_depth:
            return path
        stack.extend((sub, [*path, key]) for key, sub in children)
    return None


def _subschemas(node: Mapping[str, Any]) -> Iterator[tuple[list[str | int], Any]]:
    for key, value in node.items():
        if key in _ONE_SUBSCHEMA:
            yield [key], value
        elif key in _LIST_OF_SUBSCHEMAS and isinstance(value, Sequence):
            for i, sub in enumerate(value):
                yield [key, i], sub
        elif key in _MAP_OF_SUBSCHEMAS and isinstance(value, Mapping):
            for name, sub in value.items():
                yield [key, name], sub


def _first_unresolvable(
    node: object, resolver: Resolver[Any], path: list[str | int]
) -> SchemaIssue | None:
    if not isinstance(node, Mapping):
        return None
    # A nested ``$id`` changes the base URI that references below it resolve against.
    resolver = resolver.in_subresource(DRAFT202012.create_resource(node))
    for keyword in ("$ref", "$dynamicRef"):
        ref = node.get(keyword)
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except Unresolvable:
                return SchemaIssue(
                    format_path("", [*path, keyword]),
                    f"cannot resolve {ref!r}: references must point inside this schema "
                    "(e.g. '#/$defs/name'); other documents are never fetched",
                )
    for sub_path, sub in _subschemas(node):
        issue = _first_unresolvable(sub, resolver, [*path, *sub_path])
        if issue is not None:
            return issue
    return None
