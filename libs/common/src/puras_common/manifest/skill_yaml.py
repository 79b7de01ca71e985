"""The rules of one ``skills/<name>/skill.yaml`` (K1, K2, K4, K6).

Pure checks over a read-only view of the bundle's files; nothing here imports or runs
user code. Python entrypoints are only parsed (:func:`ast.parse`) to find the function.
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any, Final, Protocol

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from puras_common.manifest.archive import Problem
from puras_common.manifest.spec import SkillKind, SkillSpec, ToolSpec
from puras_common.model_catalog import is_known_model, unknown_model_message
from puras_common.schemas import find_schema_issue, format_path
from puras_common.textsafety import unsafe_char

__all__ = [
    "ALLOWED_FIELDS",
    "ALLOWED_TOOL_FIELDS",
    "BUILTIN_TOOL_NAMES",
    "MAX_TIMEOUT_SECONDS",
    "MAX_YAML_DEPTH",
    "SKILL_NAME",
    "TOOL_NAME",
    "BundleFiles",
    "validate_skill",
]

SKILL_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
TOOL_NAME: Final = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_-]*$")
MAX_TOOL_NAME: Final = 64  # the longest tool name the Anthropic and OpenAI APIs accept
MAX_TIMEOUT_SECONDS: Final = 3600
MAX_SKILL_YAML_BYTES: Final = 1024 * 1024

ALLOWED_FIELDS: Final = (
    "description",
    "entrypoint",
    "model",
    "disable_bash",
    "input_schema",
    "output_schema",
    "tools",
    "timeout_seconds",
    "max_steps",
    "max_cost_micros",
)
MAX_COST_MICROS: Final = 10**15
"""The largest ``max_cost_micros`` a skill may set (a billion dollars)."""
MAX_STEPS_CEILING: Final = 1000
"""The most model calls a skill's ``max_steps`` may allow in one run."""
ALLOWED_TOOL_FIELDS: Final = ("name", "description", "entrypoint", "input_schema", "output_schema")
BUILTIN_TOOL_NAMES: Final = frozenset(
    {
        "bash",
        "file_read",
        "media",
        "web_search",
        "image_search",
        "web_fetch",
        "download_url",
        "set_output",
    }
)

_PY_ENTRYPOINT: Final = re.compile(r"^(?P<file>[^:]+\.py):(?P<func>[A-Za-z_][A-Za-z0-9_]*)$")
_ENTRYPOINT_FORMS: Final = (
    "use a markdown file for an agentic skill (entrypoint: SKILL.md) or "
    "file.py:function for a deterministic one (entrypoint: main.py:run)"
)
# A YAML file a few hundred bytes long can, through aliases, stand for a tree of
# billions of nodes once it is serialised as JSON (into events, into validators).
_MAX_YAML_NODES: Final = 100_000

MAX_YAML_DEPTH: Final = 100
"""Deepest nesting of mappings and lists in a skill.yaml, aliases expanded. Room for a
schema as deep as :data:`~puras_common.schemas.MAX_SCHEMA_DEPTH` under ``tools[i]``;
composing YAML recurses once per level, so a 50,000-deep file must stop here, early."""


class BundleFiles(Protocol):
    """Read access to the files of a bundle by ``/``-separated path from its root."""

    def is_file(self, path: str) -> bool:
        """Whether ``path`` is a file of the bundle."""
        ...

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a folder of the bundle."""
        ...

    def read(self, path: str) -> bytes:
        """The content of file ``path``."""
        ...


def validate_skill(name: str, files: BundleFiles) -> tuple[SkillSpec | None, list[Problem]]:
    """Checks ``skills/<name>/skill.yaml`` and what it points at.

    Returns the parsed spec and no problems, or ``None`` and every problem found.
    """
    return _SkillCheck(name, files).run()


class _StrictLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that also refuses a key written twice in one mapping, and
    nesting deeper than :data:`MAX_YAML_DEPTH`.

    Plain YAML keeps the last of two equal keys silently, which hides exactly the kind
    of slip (two ``entrypoint:`` lines) deploy-time validation is there to catch.

    The pure-Python loader on purpose: PyYAML's scanner and parser keep their own
    stacks, and composing is the one step that recurses, once per level, so counting
    levels there bounds it; libyaml's CSafeLoader composes in C with no bound at all
    (a deep enough file crashes the process).
    """

    _depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"mappings and lists are nested deeper than {MAX_YAML_DEPTH} levels",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            # Merge keys (<<) may legitimately repeat keys they bring in; only the
            # mapping's own scalar keys are compared.
            if not isinstance(key_node, ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key_node.value!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _SkillCheck:
    def __init__(self, name: str, files: BundleFiles) -> None:
        self.name = name
        self.files = files
        self.dir = f"skills/{name}"
        self.yaml_path = f"{self.dir}/skill.yaml"
        self.problems: list[Problem] = []

    def problem(self, field: str | None, message: str, *, file: str | None = None) -> None:
        self.problems.append(Problem(file or self.yaml_path, field, message))

    def run(self) -> tuple[SkillSpec | None, list[Problem]]:
        if not SKILL_NAME.match(self.name):
            self.problem(
                None,
                f"skill name {self.name!r} is invalid: the folder name is the skill name and "
                f"must match {SKILL_NAME.pattern} (lowercase letters, digits, - and _)",
            )
        doc = self.load()
        if doc is None:
            return None, self.problems
        spec = self.check_fields(doc)
        if self.problems:
            return None, self.problems
        return spec, []

    def load(self) -> dict[str, Any] | None:
        raw = self.files.read(self.yaml_path)
        if len(raw) > MAX_SKILL_YAML_BYTES:
            self.problem(None, f"is {len(raw)} bytes; skill.yaml is limited to 1 MiB")
            return None
        try:
            doc = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            self.problem(None, _yaml_error(exc))
            return None
        except RecursionError:  # the depth bound keeps this out of reach; never a 500
            self.problem(None, f"is nested too deeply; keep it under {MAX_YAML_DEPTH} levels")
            return None
        if doc is None:
            self.problem(None, "is empty: it needs at least an entrypoint (e.g. main.py:run)")
            return None
        if not isinstance(doc, dict):
            self.problem(
                None,
                f"must be a YAML mapping of fields (description, entrypoint, ...), "
                f"not a {_yaml_type(doc)}",
            )
            return None
        where = _non_json(doc, [], [0], set())
        if where is not None:
            field, message = where
            self.problem(field or None, message)
            return None
        return doc

    def check_fields(self, doc: dict[str, Any]) -> SkillSpec | None:
        for key in doc:
            if key not in ALLOWED_FIELDS:
                self.problem(
                    str(key), f"unknown field; allowed fields: {', '.join(ALLOWED_FIELDS)}"
                )
        description = self.optional_str(doc, "description")
        kind = self.check_entrypoint(doc)
        entrypoint = doc.get("entrypoint")
        agentic_only = [
            k for k in ("model", "disable_bash", "tools", "max_steps") if doc.get(k) is not None
        ]
        if kind == "deterministic":
            for key in agentic_only:
                self.problem(
                    key,
                    "only agentic skills (entrypoint: a .md file) take this field; "
                    f"{entrypoint} is a deterministic entrypoint",
                )
        # Without a valid entrypoint form the kind is unknown; the agentic fields are
        # still checked so that one push reports every problem.
        maybe_agentic = kind != "deterministic"
        model = self.check_model(doc) if maybe_agentic else None
        disable_bash = self.check_bool(doc, "disable_bash") if maybe_agentic else False
        input_schema = self.check_schema(doc.get("input_schema"), "input_schema")
        output_schema = self.check_schema(
            doc.get("output_schema"),
            "output_schema",
            # An agentic skill's output_schema is the set_output tool's input schema
            # (A4), and model APIs take only object schemas for tool arguments.
            must_be_object=kind == "agentic",
        )
        tools = self.check_tools(doc.get("tools")) if maybe_agentic else []
        timeout = self.check_timeout(doc.get("timeout_seconds"))
        max_steps = self.check_max_steps(doc.get("max_steps")) if maybe_agentic else None
        max_cost = self.check_max_cost(doc.get("max_cost_micros"))
        if kind is None or not isinstance(entrypoint, str) or self.problems:
            return None
        return SkillSpec(
            name=self.name,
            kind=kind,
            entrypoint=entrypoint,
            description=description,
            model=model,
            disable_bash=disable_bash,
            input_schema=input_schema,
            output_schema=output_schema,
            tools=tools,
            timeout_seconds=timeout,
            max_steps=max_steps,
            max_cost_micros=max_cost,
        )

    def optional_str(self, doc: Mapping[str, Any], key: str, prefix: str = "") -> str:
        value = doc.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.problem(prefix + key, f"must be a string, not {_yaml_type(value)}")
            return ""
        return value

    def check_entrypoint(self, doc: Mapping[str, Any]) -> SkillKind | None:
        """The kind the entrypoint's form declares (``None``: neither form).

        The kind is known from the form alone, so a missing file or function is
        reported without hiding the kind-specific checks of the other fields.
        """
        value = doc.get("entrypoint")
        if value is None:
            self.problem("entrypoint", f"is required; {_ENTRYPOINT_FORMS}")
            return None
        if not isinstance(value, str) or not value:
            self.problem("entrypoint", f"must be a non-empty string; {_ENTRYPOINT_FORMS}")
            return None
        if value.endswith(".md") and ":" not in value:
            self.check_relative_file("entrypoint", value)
            return "agentic"
        match = _PY_ENTRYPOINT.match(value)
        if match is None:
            self.problem("entrypoint", f"{value!r} is not a valid entrypoint; {_ENTRYPOINT_FORMS}")
            return None
        self.check_function("entrypoint", match["file"], match["func"])
        return "deterministic"

    def check_relative_file(self, field: str, rel: str) -> bool:
        """Whether ``rel`` names an existing file inside the skill folder (reported if not)."""
        if rel.startswith("/") or "\\" in rel or any(ord(c) < 32 for c in rel):
            self.problem(field, f"{rel!r} must be a path relative to {self.dir}/ using /")
            return False
        parts = [p for p in rel.split("/") if p != "."]
        if any(p in ("", "..") for p in parts):
            self.problem(field, f"{rel!r} must stay inside {self.dir}/ (no '..' or '//')")
            return False
        path = "/".join([self.dir, *parts])
        if not self.files.is_file(path):
            what = "is a folder, not a file" if self.files.is_dir(path) else "not found"
            self.problem(field, f"file {rel} {what} in {self.dir}/")
            return False
        return True

    def check_function(self, field: str, rel: str, func: str) -> bool:
        """Whether ``rel`` parses and defines a plain top-level ``def func`` (reported if not)."""
        if not self.check_relative_file(field, rel):
            return False
        path = "/".join([self.dir, *(p for p in rel.split("/") if p != ".")])
        try:
            tree = ast.parse(self.files.read(path), filename=path)
        except SyntaxError as exc:
            where = f"line {exc.lineno}" if exc.lineno else "somewhere"
            self.problem(None, f"syntax error at {where}: {exc.msg}", file=path)
            return False
        except ValueError as exc:  # NUL bytes in the source on Python < 3.12
            self.problem(None, f"cannot be parsed as Python: {exc}", file=path)
            return False
        # The last top-level binding of the name is the one an import would see.
        found: ast.FunctionDef | ast.AsyncFunctionDef | None = None
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == func:
                found = node
        if found is None:
            self.problem(
                field,
                f"{rel} has no top-level function named {func!r} "
                f"(expected: def {func}(inputs: dict) -> dict)",
            )
            return False
        if isinstance(found, ast.AsyncFunctionDef):
            self.problem(
                field,
                f"{func} in {rel} (line {found.lineno}) must be a plain function "
                f"(def), not async def",
            )
            return False
        # A decorator may change the signature, so only an undecorated def is judged.
        if not found.decorator_list and not _takes_one_argument(found.args):
            self.problem(
                field,
                f"{func} in {rel} (line {found.lineno}) must take exactly one argument, "
                f"the inputs: def {func}(inputs: dict) -> dict",
            )
            return False
        return True

    def check_model(self, doc: Mapping[str, Any]) -> str | None:
        value = doc.get("model")
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem("model", f"must be a model slug string, not {_yaml_type(value)}")
            return None
        if not is_known_model(value):
            self.problem("model", unknown_model_message(value))
            return None
        return value

    def check_bool(self, doc: Mapping[str, Any], key: str) -> bool:
        value = doc.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            self.problem(key, f"must be true or false, not {_yaml_type(value)}")
            return False
        return value

    def check_timeout(self, value: object) -> int | None:
        if value is None:
            return None
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 1 <= value <= MAX_TIMEOUT_SECONDS
        ):
            self.problem(
                "timeout_seconds",
                f"must be a whole number of seconds from 1 to {MAX_TIMEOUT_SECONDS}, not {value!r}",
            )
            return None
        return value

    def check_max_cost(self, value: object) -> int | None:
        if value is None:
            return None
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 1 <= value <= MAX_COST_MICROS
        ):
            self.problem(
                "max_cost_micros",
                "must be a positive whole number of micros (1 USD = 1,000,000), "
                f"at most {MAX_COST_MICROS}, not {value!r}",
            )
            return None
        return value

    def check_max_steps(self, value: object) -> int | None:
        if value is None:
            return None
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 1 <= value <= MAX_STEPS_CEILING
        ):
            self.problem(
                "max_steps",
                f"must be a whole number of model calls from 1 to {MAX_STEPS_CEILING}, "
                f"not {value!r}",
            )
            return None
        return value

    def check_schema(
        self, value: object, field: str, *, must_be_object: bool = False
    ) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(
                field,
                f"must be a JSON Schema mapping (e.g. type: object with properties), "
                f"not {_yaml_type(value)}",
            )
            return None
        issue = find_schema_issue(value)
        if issue is not None:
            self.problem(f"{field}.{issue.path}" if issue.path else field, issue.message)
            return None
        if must_be_object and value.get("type") != "object":
            self.problem(
                field,
                "must have type: object at the top: the model fills it in as the "
                "arguments of a tool call, and model APIs take only objects there",
            )
            return None
        return value

    def check_tools(self, value: object) -> list[ToolSpec]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(
                "tools",
                f"must be a list of tools ({', '.join(ALLOWED_TOOL_FIELDS)}), "
                f"not {_yaml_type(value)}",
            )
            return []
        tools: list[ToolSpec] = []
        names: set[str] = set()
        for i, item in enumerate(value):
            tool = self.check_tool(i, item, names)
            if tool is not None:
                tools.append(tool)
        return tools

    def check_tool(self, i: int, item: object, names: set[str]) -> ToolSpec | None:
        at = f"tools[{i}]"
        if not isinstance(item, dict):
            self.problem(
                at,
                f"must be a mapping with {', '.join(ALLOWED_TOOL_FIELDS)}, not {_yaml_type(item)}",
            )
            return None
        before = len(self.problems)
        for key in item:
            if key not in ALLOWED_TOOL_FIELDS:
                self.problem(
                    f"{at}.{key}",
                    f"unknown tool field; allowed fields: {', '.join(ALLOWED_TOOL_FIELDS)}",
                )
        name = item.get("name")
        if not isinstance(name, str) or not name:
            self.problem(f"{at}.name", "is required: the name the model calls the tool by")
        elif not TOOL_NAME.match(name) or len(name) > MAX_TOOL_NAME:
            self.problem(
                f"{at}.name",
                f"{name!r} is invalid: tool names match {TOOL_NAME.pattern} "
                f"and have at most {MAX_TOOL_NAME} characters",
            )
        elif name in BUILTIN_TOOL_NAMES:
            self.problem(
                f"{at}.name",
                f"{name!r} is the name of a built-in tool; built-in names "
                f"({', '.join(sorted(BUILTIN_TOOL_NAMES))}) cannot be reused",
            )
        elif name in names:
            self.problem(f"{at}.name", f"{name!r} is declared twice; tool names must be unique")
        else:
            names.add(name)
        description = self.optional_str(item, "description", prefix=f"{at}.")
        entrypoint = item.get("entrypoint")
        match = _PY_ENTRYPOINT.match(entrypoint) if isinstance(entrypoint, str) else None
        if match is None:
            self.problem(
                f"{at}.entrypoint",
                f"must be file.py:function relative to {self.dir}/ "
                f"(e.g. tools/render.py:run), not {entrypoint!r}",
            )
        else:
            self.check_function(f"{at}.entrypoint", match["file"], match["func"])
        input_schema = self.check_schema(
            item.get("input_schema"), f"{at}.input_schema", must_be_object=True
        )
        output_schema = self.check_schema(item.get("output_schema"), f"{at}.output_schema")
        if len(self.problems) > before or not isinstance(name, str) or match is None:
            return None
        return ToolSpec(
            name=name,
            description=description,
            entrypoint=match.string,
            # A tool declared without input_schema takes any arguments; stored as an
            # object schema so every model adapter can pass it on as is.
            input_schema=input_schema if input_schema is not None else {"type": "object"},
            output_schema=output_schema,
        )


def _takes_one_argument(args: ast.arguments) -> bool:
    positional = [*args.posonlyargs, *args.args]
    required_positional = len(positional) - len(args.defaults)
    required_keyword = any(d is None for d in args.kw_defaults)
    can_take_one = bool(positional) or args.vararg is not None
    return can_take_one and required_positional <= 1 and not required_keyword


def _yaml_error(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {what}{context}"
    return f"invalid YAML: {exc}"


def _yaml_type(value: object) -> str:
    names: list[tuple[type | tuple[type, ...], str]] = [
        (bool, "boolean"),
        ((int, float), "number"),
        (str, "string"),
        (list, "list"),
        (dict, "mapping"),
    ]
    for types, name in names:
        if isinstance(value, types):
            return name
    return "null" if value is None else type(value).__name__


def _non_json(
    value: object, path: list[str | int], budget: list[int], stack: set[int]
) -> tuple[str, str] | None:
    """Where ``value`` stops being plain JSON data, as (field path, message), or None."""
    budget[0] += 1
    if budget[0] > _MAX_YAML_NODES:
        return format_path("", path), (
            f"skill.yaml expands to more than {_MAX_YAML_NODES} values (through YAML "
            "aliases?); write the schemas out plainly"
        )
    if isinstance(value, str):
        unsafe = unsafe_char(value)
        if unsafe is None:
            return None
        return format_path("", path), (
            f"the text contains {unsafe}, which deployments cannot store; remove it"
        )
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return format_path(
            "", path
        ), f"{value!r} is not a JSON number; quote it or use a finite number"
    if isinstance(value, dict | list):
        if id(value) in stack:
            return format_path("", path), "a YAML alias refers to itself; JSON cannot hold a cycle"
        # Aliases can nest a tree inside itself far beyond what the file shows.
        if len(stack) >= MAX_YAML_DEPTH:
            return format_path("", path), (
                f"is nested deeper than {MAX_YAML_DEPTH} levels (through YAML aliases?); "
                "write the schemas out plainly"
            )
        stack.add(id(value))
        try:
            items: list[tuple[str | int, Any]] = (
                list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            )
            for key, sub in items:
                if isinstance(value, dict) and not isinstance(key, str):
                    return format_path("", [*path, str(key)]), (
                        f"the key {key!r} is a {_yaml_type(key)}; JSON keys are strings, "
                        "so quote it"
                    )
                if isinstance(key, str) and (bad := unsafe_char(key)) is not None:
                    return format_path("", [*path, key]), (
                        f"the key contains {bad}, which deployments cannot store; remove it"
                    )
                found = _non_json(sub, [*path, key], budget, stack)
                if found is not None:
                    return found
        finally:
            stack.discard(id(value))
        return None
    if isinstance(value, dt.date | dt.datetime):
        return format_path("", path), (
            f"{value} was read as a YAML date; quote it to keep it a string (JSON has no dates)"
        )
    return format_path(
        "", path
    ), f"a YAML {type(value).__name__} has no JSON equivalent; use plain data"
