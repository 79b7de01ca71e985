"""Deploy-time validation of skills in a bundle (K1-K6, P1): every rule has a test."""

from __future__ import annotations

import hashlib
import io
import secrets
import textwrap
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from puras_bundle import pack_project
from puras_common.manifest import (
    BUILTIN_TOOL_NAMES,
    BundleInvalid,
    Problem,
    SkillSpec,
    ToolSpec,
    ValidatedBundle,
    validate_bundle,
)
from puras_common.model_catalog import known_models

REPO = Path(__file__).resolve().parents[2]

ECHO_YAML = """\
description: Echo the input back unchanged.
entrypoint: main.py:run
input_schema:
  type: object
  properties:
    text: { type: string }
  required: [text]
output_schema:
  type: object
  properties:
    echoed: { type: string }
  required: [echoed]
"""
ECHO_PY = 'def run(inputs: dict) -> dict:\n    return {"echoed": inputs["text"]}\n'
HELLO_YAML = """\
description: Answer briefly.
entrypoint: SKILL.md
output_schema:
  type: object
  properties:
    answer: { type: string }
  required: [answer]
"""


def make_zip(files: Mapping[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def echo(yaml: str = ECHO_YAML, main: str = ECHO_PY) -> dict[str, str | bytes]:
    return {"skills/echo/skill.yaml": yaml, "skills/echo/main.py": main}


def agentic(yaml_text: str, **extra: str) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {
        "skills/agent/skill.yaml": textwrap.dedent(yaml_text),
        "skills/agent/SKILL.md": "You are helpful.",
    }
    files.update(extra)
    return files


def problems_of(files: Mapping[str, str | bytes]) -> list[Problem]:
    with pytest.raises(BundleInvalid) as err:
        validate_bundle(make_zip(files))
    return err.value.problems


def only_problem(files: Mapping[str, str | bytes]) -> Problem:
    found = problems_of(files)
    assert len(found) == 1, found
    return found[0]


# -- valid bundles -------------------------------------------------------------------


def test_valid_bundle_gives_sorted_specs_and_sizes() -> None:
    files = echo()
    files["skills/hello/skill.yaml"] = HELLO_YAML
    files["skills/hello/SKILL.md"] = "Be brief."
    files["requirements.txt"] = "pillow>=10\n"
    out = validate_bundle(make_zip(files))
    assert isinstance(out, ValidatedBundle)
    assert [s.name for s in out.skills] == ["echo", "hello"]
    echo_spec, hello_spec = out.skills
    assert echo_spec.kind == "deterministic"
    assert echo_spec.module_file == "main.py"
    assert echo_spec.function == "run"
    assert echo_spec.description == "Echo the input back unchanged."
    assert echo_spec.input_schema == {
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    }
    assert hello_spec.kind == "agentic"
    assert hello_spec.entrypoint == "SKILL.md"
    assert hello_spec.model is None
    assert hello_spec.disable_bash is False
    assert out.requirements_sha256 == hashlib.sha256(b"pillow>=10\n").hexdigest()
    assert out.file_count == 5
    assert out.uncompressed_bytes == sum(len(str(v).encode()) for v in files.values())


def test_no_requirements_gives_none() -> None:
    assert validate_bundle(make_zip(echo())).requirements_sha256 is None


def test_requirements_must_be_at_the_root() -> None:
    files = echo()
    files["skills/echo/requirements.txt"] = "x"
    out = validate_bundle(make_zip(files))
    assert out.requirements_sha256 is None


def test_all_agentic_fields_are_parsed() -> None:
    files = agentic(
        """\
        description: d
        entrypoint: prompts/system.md
        model: gpt/4o
        disable_bash: true
        timeout_seconds: 120
        max_steps: 12
        input_schema:
          type: object
          properties:
            image:
              type: string
              contentMediaType: image/png
              x-puras: { widget: image, upload: drive, future_hint: 1 }
        tools:
          - name: render
            description: Render it.
            entrypoint: tools/render.py:run
            input_schema: { type: object, properties: { a: { type: integer } } }
            output_schema: { type: object }
          - name: bare
            entrypoint: tools/render.py:run
        """,
        **{
            "skills/agent/prompts/system.md": "Prompt.",
            "skills/agent/tools/render.py": "def run(inputs):\n    return {}\n",
        },
    )
    (spec,) = validate_bundle(make_zip(files)).skills
    assert spec == SkillSpec(
        name="agent",
        kind="agentic",
        entrypoint="prompts/system.md",
        description="d",
        model="gpt/4o",
        disable_bash=True,
        timeout_seconds=120,
        max_steps=12,
        input_schema={
            "type": "object",
            "properties": {
                "image": {
                    "type": "string",
                    "contentMediaType": "image/png",
                    "x-puras": {"widget": "image", "upload": "drive", "future_hint": 1},
                }
            },
        },
        output_schema=None,
        tools=[
            ToolSpec(
                name="render",
                description="Render it.",
                entrypoint="tools/render.py:run",
                input_schema={"type": "object", "properties": {"a": {"type": "integer"}}},
                output_schema={"type": "object"},
            ),
            ToolSpec(
                name="bare",
                description="",
                entrypoint="tools/render.py:run",
                input_schema={"type": "object"},
                output_schema=None,
            ),
        ],
    )


def test_user_code_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = (
        f"open({str(marker)!r}, 'w').close()\n"
        "raise SystemExit(3)\n\n"
        "def run(inputs):\n    return {}\n"
    )
    validate_bundle(make_zip(echo(main=code)))
    assert not marker.exists()


def test_entrypoint_in_a_subfolder() -> None:
    files = echo(yaml="entrypoint: src/main.py:run\n")
    files["skills/echo/src/main.py"] = ECHO_PY
    (spec,) = validate_bundle(make_zip(files)).skills
    assert spec.entrypoint == "src/main.py:run"


def test_folders_without_skill_yaml_are_not_skills() -> None:
    files = echo()
    files["skills/shared/helpers.py"] = "X = 1\n"
    files["skills/echo/nested/skill.yaml"] = "not: a skill\n"
    assert [s.name for s in validate_bundle(make_zip(files)).skills] == ["echo"]


# -- skill names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Echo", "_echo", "-echo", "echo.v2", "éc"])
def test_bad_skill_names(name: str) -> None:
    files = {f"skills/{name}/skill.yaml": ECHO_YAML, f"skills/{name}/main.py": ECHO_PY}
    problem = only_problem(files)
    assert problem.file == f"skills/{name}/skill.yaml"
    assert "^[a-z0-9][a-z0-9_-]*$" in problem.message


@pytest.mark.parametrize("name", ["echo", "e", "0day", "my_skill-2"])
def test_good_skill_names(name: str) -> None:
    files = {f"skills/{name}/skill.yaml": ECHO_YAML, f"skills/{name}/main.py": ECHO_PY}
    assert validate_bundle(make_zip(files)).skills[0].name == name


# -- no skills -----------------------------------------------------------------------


def test_no_skills() -> None:
    problem = only_problem({"README.md": "hi", "skills/echo/main.py": ECHO_PY})
    assert problem == Problem(
        "<bundle>", None, "bundle has no skills: expected skills/<name>/skill.yaml"
    )


def test_skill_yml_gets_a_rename_hint() -> None:
    problem = only_problem({"skills/echo/skill.yml": ECHO_YAML, "skills/echo/main.py": ECHO_PY})
    assert problem.file == "skills/echo/skill.yml"
    assert "skill.yaml" in problem.message


# -- YAML ----------------------------------------------------------------------------


def test_yaml_syntax_error_has_line_info() -> None:
    problem = only_problem(echo(yaml="entrypoint: main.py:run\ninput_schema: [unclosed\n"))
    assert problem.file == "skills/echo/skill.yaml"
    assert "invalid YAML at line 3" in problem.message


def test_yaml_must_be_a_mapping() -> None:
    problem = only_problem(echo(yaml="- entrypoint: main.py:run\n"))
    assert "must be a YAML mapping" in problem.message
    assert "list" in problem.message


def test_empty_yaml() -> None:
    problem = only_problem(echo(yaml="# nothing\n"))
    assert "is empty" in problem.message


def test_duplicate_yaml_key_is_refused() -> None:
    text = "entrypoint: main.py:run\nentrypoint: other.py:run\n"
    problem = only_problem(echo(yaml=text))
    assert "found the key 'entrypoint' twice" in problem.message
    assert "line 2" in problem.message


def test_yaml_merge_keys_still_work() -> None:
    text = textwrap.dedent(
        """\
        entrypoint: main.py:run
        input_schema:
          type: object
          properties:
            a: &str { type: string, description: x }
            b:
              <<: *str
              description: y
        """
    )
    (spec,) = validate_bundle(make_zip(echo(yaml=text))).skills
    assert spec.input_schema is not None
    assert spec.input_schema["properties"]["b"] == {"type": "string", "description": "y"}


def test_yaml_date_in_a_schema_is_refused() -> None:
    text = "entrypoint: main.py:run\ninput_schema:\n  type: string\n  default: 2024-01-02\n"
    problem = only_problem(echo(yaml=text))
    assert problem.field == "input_schema.default"
    assert "quote it" in problem.message


def test_non_string_key_is_refused() -> None:
    text = "entrypoint: main.py:run\ninput_schema:\n  type: object\n  properties:\n    1: {}\n"
    problem = only_problem(echo(yaml=text))
    assert problem.field == 'input_schema.properties["1"]'
    assert "quote it" in problem.message


def test_alias_bomb_is_refused() -> None:
    lines = ["entrypoint: main.py:run", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    problem = only_problem(echo(yaml="\n".join(lines) + "\n"))
    assert "expands to more than" in problem.message


def test_skill_yaml_size_cap() -> None:
    # Random text: a run of one letter would trip the compression-ratio check first.
    text = "entrypoint: main.py:run\ndescription: " + secrets.token_hex(600_000) + "\n"
    problem = only_problem(echo(yaml=text))
    assert "limited to 1 MiB" in problem.message


# -- fields --------------------------------------------------------------------------


def test_unknown_field_lists_the_allowed_ones() -> None:
    problem = only_problem(echo(yaml=ECHO_YAML + "entry_point: x\n"))
    assert problem.file == "skills/echo/skill.yaml"
    assert problem.field == "entry_point"
    for allowed in ("description", "entrypoint", "model", "disable_bash", "input_schema"):
        assert allowed in problem.message
    assert "output_schema, tools, timeout_seconds, max_steps, max_cost_micros" in problem.message


@pytest.mark.parametrize("value", ["0", "1001", "ten", "true"])
def test_max_steps_is_a_whole_number_of_model_calls_up_to_1000(value: str) -> None:
    problem = only_problem(agentic(f"entrypoint: SKILL.md\nmax_steps: {value}\n"))
    assert problem.field == "max_steps"
    assert "from 1 to 1000" in problem.message


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "lots", "true", str(10**16)])
def test_max_cost_micros_is_a_positive_whole_number(value: str) -> None:
    problem = only_problem(echo(yaml=ECHO_YAML + f"max_cost_micros: {value}\n"))
    assert problem.field == "max_cost_micros"
    assert "positive whole number of micros" in problem.message


def test_max_steps_is_for_agentic_skills_only() -> None:
    problem = only_problem(echo(yaml=ECHO_YAML + "max_steps: 3\n"))
    assert problem.field == "max_steps"
    assert "only agentic skills" in problem.message


def test_description_must_be_a_string() -> None:
    problem = only_problem(echo(yaml="entrypoint: main.py:run\ndescription: [a]\n"))
    assert problem.field == "description"


def test_entrypoint_is_required() -> None:
    problem = only_problem(echo(yaml="description: x\n"))
    assert problem.field == "entrypoint"
    assert "required" in problem.message


@pytest.mark.parametrize("entrypoint", ["main.py", "main:run", "run.sh", "main.py:", "main.py:1x"])
def test_entrypoint_of_neither_form(entrypoint: str) -> None:
    problem = only_problem(echo(yaml=f"entrypoint: '{entrypoint}'\n"))
    assert problem.field == "entrypoint"
    assert "SKILL.md" in problem.message
    assert "main.py:run" in problem.message


def test_missing_python_entrypoint_file() -> None:
    files = echo()
    del files["skills/echo/main.py"]
    problem = only_problem(files)
    assert str(problem) == (
        "skills/echo/skill.yaml: entrypoint: file main.py not found in skills/echo/"
    )


def test_missing_markdown_entrypoint_file() -> None:
    files = agentic("entrypoint: SKILL.md\n")
    del files["skills/agent/SKILL.md"]
    problem = only_problem(files)
    assert problem.field == "entrypoint"
    assert "file SKILL.md not found in skills/agent/" in problem.message


def test_entrypoint_file_of_another_skill_does_not_count() -> None:
    files = echo(yaml="entrypoint: ../other/main.py:run\n")
    files["skills/other/main.py"] = ECHO_PY
    problem = only_problem(files)
    assert problem.field == "entrypoint"
    assert "inside skills/echo/" in problem.message


def test_entrypoint_naming_a_folder() -> None:
    files = echo(yaml="entrypoint: pkg.py:run\n")
    files["skills/echo/pkg.py/inner.txt"] = "x"
    problem = only_problem(files)
    assert "is a folder" in problem.message


def test_missing_function() -> None:
    problem = only_problem(echo(main="def main(inputs):\n    return {}\n"))
    assert problem.field == "entrypoint"
    assert "no top-level function named 'run'" in problem.message


def test_method_is_not_a_top_level_function() -> None:
    code = "class X:\n    def run(self, inputs):\n        return {}\n"
    problem = only_problem(echo(main=code))
    assert "no top-level function named 'run'" in problem.message


def test_async_function_is_refused() -> None:
    code = "import asyncio\n\nasync def run(inputs):\n    return {}\n"
    problem = only_problem(echo(main=code))
    assert problem.field == "entrypoint"
    assert "must be a plain function" in problem.message
    assert "line 3" in problem.message


def test_last_definition_wins() -> None:
    code = "async def run(inputs):\n    return {}\n\ndef run(inputs):\n    return {}\n"
    validate_bundle(make_zip(echo(main=code)))


@pytest.mark.parametrize(
    "signature",
    ["def run():", "def run(a, b):", "def run(inputs, *, flag):"],
)
def test_function_must_take_one_argument(signature: str) -> None:
    problem = only_problem(echo(main=f"{signature}\n    return {{}}\n"))
    assert "exactly one argument" in problem.message


@pytest.mark.parametrize(
    "signature",
    ["def run(inputs):", "def run(inputs, extra=1):", "def run(*args):", "def run(inputs, /):"],
)
def test_signatures_taking_one_argument(signature: str) -> None:
    validate_bundle(make_zip(echo(main=f"{signature}\n    return {{}}\n")))


def test_python_syntax_error_names_file_and_line() -> None:
    code = "def run(inputs):\n    return {\n\nx = = 1\n"
    problem = only_problem(echo(main=code))
    assert problem.file == "skills/echo/main.py"
    assert "syntax error at line" in problem.message


def test_model_must_be_a_known_slug_and_the_message_lists_them() -> None:
    problem = only_problem(agentic("entrypoint: SKILL.md\nmodel: claude/sonnet-9\n"))
    assert problem.field == "model"
    assert "claude/sonnet-9" in problem.message
    for slug in known_models():
        assert slug in problem.message


@pytest.mark.parametrize("field", ["model: claude/sonnet-4-6", "disable_bash: true", "tools: []"])
def test_agentic_only_fields_on_a_deterministic_skill(field: str) -> None:
    problem = only_problem(echo(yaml=f"entrypoint: main.py:run\n{field}\n"))
    assert problem.field == field.split(":")[0]
    assert "only agentic skills" in problem.message


def test_kind_comes_from_the_form_even_when_the_file_is_missing() -> None:
    files = echo(yaml="entrypoint: main.py:run\nmodel: claude/sonnet-4-6\n")
    del files["skills/echo/main.py"]
    assert [p.field for p in problems_of(files)] == ["entrypoint", "model"]
    assert "only agentic skills" in problems_of(files)[1].message


def test_disable_bash_must_be_a_bool() -> None:
    problem = only_problem(agentic("entrypoint: SKILL.md\ndisable_bash: 'yes'\n"))
    assert problem.field == "disable_bash"


@pytest.mark.parametrize("value", ["0", "3601", "true", "1.5", "'60'"])
def test_timeout_seconds_range(value: str) -> None:
    problem = only_problem(echo(yaml=f"entrypoint: main.py:run\ntimeout_seconds: {value}\n"))
    assert problem.field == "timeout_seconds"
    assert "1 to 3600" in problem.message


@pytest.mark.parametrize("value", [1, 3600])
def test_timeout_seconds_bounds_are_inclusive(value: int) -> None:
    text = f"entrypoint: main.py:run\ntimeout_seconds: {value}\n"
    (spec,) = validate_bundle(make_zip(echo(yaml=text))).skills
    assert spec.timeout_seconds == value


# -- schemas -------------------------------------------------------------------------


def test_invalid_input_schema_names_the_field_path() -> None:
    text = ECHO_YAML.replace("text: { type: string }", "text: { type: strin }")
    problem = only_problem(echo(yaml=text))
    assert problem.file == "skills/echo/skill.yaml"
    assert problem.field == "input_schema.properties.text.type"
    assert "'strin' is not valid under any of the given schemas" in problem.message


def test_invalid_output_schema_names_the_field_path() -> None:
    text = ECHO_YAML.replace("required: [echoed]", "required: echoed")
    problem = only_problem(echo(yaml=text))
    assert problem.field == "output_schema.required"


def test_schema_must_be_a_mapping() -> None:
    problem = only_problem(echo(yaml="entrypoint: main.py:run\ninput_schema: [a]\n"))
    assert problem.field == "input_schema"
    assert "JSON Schema mapping" in problem.message


def test_unresolvable_ref_in_schema() -> None:
    text = "entrypoint: main.py:run\ninput_schema: { $ref: 'https://x.test/s.json' }\n"
    problem = only_problem(echo(yaml=text))
    assert problem.field == "input_schema.$ref"


def test_agentic_output_schema_must_be_an_object() -> None:
    problem = only_problem(agentic("entrypoint: SKILL.md\noutput_schema: { type: string }\n"))
    assert problem.field == "output_schema"
    assert "type: object" in problem.message


def test_deterministic_output_schema_may_be_anything() -> None:
    text = "entrypoint: main.py:run\noutput_schema: { type: [object, 'null'] }\n"
    validate_bundle(make_zip(echo(yaml=text)))


# -- tools ---------------------------------------------------------------------------

TOOL_PY = "def run(inputs):\n    return {}\n"


def tool_skill(tools_yaml: str, **extra: str) -> dict[str, str | bytes]:
    files = agentic(
        "entrypoint: SKILL.md\ntools:\n" + textwrap.indent(textwrap.dedent(tools_yaml), "  ")
    )
    files["skills/agent/tools/x.py"] = TOOL_PY
    files.update(extra)
    return files


def test_tool_entrypoint_file_missing() -> None:
    problem = only_problem(tool_skill("- name: t\n  entrypoint: tools/missing.py:run\n"))
    assert problem.file == "skills/agent/skill.yaml"
    assert problem.field == "tools[0].entrypoint"
    assert "file tools/missing.py not found in skills/agent/" in problem.message


def test_tool_function_missing() -> None:
    problem = only_problem(tool_skill("- name: t\n  entrypoint: tools/x.py:go\n"))
    assert problem.field == "tools[0].entrypoint"
    assert "no top-level function named 'go'" in problem.message


def test_tool_async_function() -> None:
    files = tool_skill(
        "- name: t\n  entrypoint: tools/y.py:run\n",
        **{"skills/agent/tools/y.py": "async def run(inputs):\n    return {}\n"},
    )
    assert "must be a plain function" in only_problem(files).message


def test_tool_syntax_error() -> None:
    files = tool_skill(
        "- name: t\n  entrypoint: tools/y.py:run\n",
        **{"skills/agent/tools/y.py": "def run(inputs:\n"},
    )
    problem = only_problem(files)
    assert problem.file == "skills/agent/tools/y.py"
    assert "line 1" in problem.message


@pytest.mark.parametrize("entrypoint", ["tools/x.py", "tools/x.md", "''"])
def test_tool_entrypoint_form(entrypoint: str) -> None:
    problem = only_problem(tool_skill(f"- name: t\n  entrypoint: {entrypoint}\n"))
    assert problem.field == "tools[0].entrypoint"
    assert "file.py:function" in problem.message


@pytest.mark.parametrize("name", ["1abc", "has space", "a.b", "x" * 65])
def test_tool_bad_names(name: str) -> None:
    problem = only_problem(tool_skill(f"- name: '{name}'\n  entrypoint: tools/x.py:run\n"))
    assert problem.field == "tools[0].name"
    assert "invalid" in problem.message


def test_tool_name_required() -> None:
    problem = only_problem(tool_skill("- entrypoint: tools/x.py:run\n"))
    assert problem.field == "tools[0].name"


@pytest.mark.parametrize("name", sorted(BUILTIN_TOOL_NAMES))
def test_tool_name_collides_with_builtin(name: str) -> None:
    problem = only_problem(tool_skill(f"- name: {name}\n  entrypoint: tools/x.py:run\n"))
    assert problem.field == "tools[0].name"
    assert "built-in" in problem.message


def test_builtin_tool_names() -> None:
    assert (
        frozenset(
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
        == BUILTIN_TOOL_NAMES
    )


def test_tool_names_unique() -> None:
    problem = only_problem(
        tool_skill(
            "- name: t\n  entrypoint: tools/x.py:run\n- name: t\n  entrypoint: tools/x.py:run\n"
        )
    )
    assert problem.field == "tools[1].name"
    assert "twice" in problem.message


def test_tool_unknown_field() -> None:
    problem = only_problem(tool_skill("- name: t\n  entrypoint: tools/x.py:run\n  timeout: 3\n"))
    assert problem.field == "tools[0].timeout"
    assert "name, description, entrypoint, input_schema, output_schema" in problem.message


def test_tool_input_schema_must_be_an_object() -> None:
    problem = only_problem(
        tool_skill("- name: t\n  entrypoint: tools/x.py:run\n  input_schema: { type: array }\n")
    )
    assert problem.field == "tools[0].input_schema"


def test_tool_schema_error_path() -> None:
    problem = only_problem(
        tool_skill(
            "- name: t\n  entrypoint: tools/x.py:run\n"
            "  output_schema: { properties: { a: { type: 7 } } }\n"
        )
    )
    assert problem.field == "tools[0].output_schema.properties.a.type"


def test_tools_must_be_a_list_of_mappings() -> None:
    assert only_problem(agentic("entrypoint: SKILL.md\ntools: {name: t}\n")).field == "tools"
    assert only_problem(agentic("entrypoint: SKILL.md\ntools: [t]\n")).field == "tools[0]"


# -- reporting -----------------------------------------------------------------------


def test_every_problem_is_collected_and_listed_one_per_line() -> None:
    files = echo(main="def other(inputs):\n    return {}\n")
    files["skills/Bad/skill.yaml"] = ECHO_YAML
    files["skills/Bad/main.py"] = ECHO_PY
    files["skills/agent/skill.yaml"] = "entrypoint: SKILL.md\nmodel: x/y\nbogus: 1\n"
    with pytest.raises(BundleInvalid) as err:
        validate_bundle(make_zip(files))
    fields = [(p.file, p.field) for p in err.value.problems]
    assert fields == [
        ("skills/Bad/skill.yaml", None),
        ("skills/agent/skill.yaml", "bogus"),
        ("skills/agent/skill.yaml", "entrypoint"),
        ("skills/agent/skill.yaml", "model"),
        ("skills/echo/skill.yaml", "entrypoint"),
    ]
    lines = str(err.value).splitlines()
    assert len(lines) == 5
    assert (
        lines[2] == "skills/agent/skill.yaml: entrypoint: file SKILL.md not found in skills/agent/"
    )
    assert isinstance(err.value, ValueError)


def test_problem_str_without_field() -> None:
    assert str(Problem("<bundle>", None, "not a zip")) == "<bundle>: not a zip"


# -- the examples --------------------------------------------------------------------


@pytest.mark.parametrize("example", ["quickstart", "image-tools"])
def test_examples_validate(example: str) -> None:
    out = validate_bundle(pack_project(REPO / "examples" / example).data)
    kinds = {s.name: s.kind for s in out.skills}
    if example == "quickstart":
        assert kinds == {"echo": "deterministic", "hello": "agentic"}
    else:
        assert kinds == {"caption": "agentic", "image-info": "deterministic"}
        assert out.requirements_sha256 == hashlib.sha256(b"pillow>=10\n").hexdigest()
        caption = next(s for s in out.skills if s.name == "caption")
        assert caption.model == "claude/sonnet-4-7"
