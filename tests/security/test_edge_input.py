"""No input stops the platform (Z9): attacks at every edge, against the whole stack.

Each test sends what an attacker would: NUL and lone surrogates in bodies, keys,
headers, query values, paths, deployment notes and manifests; undecodable bytes; deep
nesting and YAML bombs; requirements.txt lines that reach outside the package index;
and a skill whose own output holds NUL. Every one must be a 4xx that says what to fix,
on a connection that keeps working, and the platform must go on serving every tenant.
"""

from __future__ import annotations

import io
import socket
import zipfile
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from stack_fixtures import serve_stack

from puras_cli.devstack import Stack
from stackapi import Api, new_api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ALLOWED_INDEX = "https://pypi.internal.example/simple"
REPLACEMENT = "\ufffd"


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    yield from serve_stack({"PURAS_GATEWAY_ALLOWED_INDEX_URLS": ALLOWED_INDEX})


def connection(r: httpx.Response) -> object:
    """The client's end of the TCP connection that carried ``r`` (address, port)."""
    return r.extensions["network_stream"].get_extra_info("client_addr")


# The connection of the last refused request: the next good one must reuse it.
_refused_on: list[object] = []


def err(r: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers.get("connection", "").lower() != "close", r.headers
    _refused_on[:] = [connection(r)]
    body = r.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"]
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def same_connection(r: httpx.Response) -> None:
    assert _refused_on, "no refused request to compare with"
    assert connection(r) == _refused_on[0], "the refused request's connection was closed"


def still_serves(api: Api) -> None:
    """The connection of the last refused request answers a good request."""
    r = api.submit("echo", {"text": "fine"}, wait="true", timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded"
    assert r.json()["result"] == {"echoed": "fine"}
    same_connection(r)


def post_raw(api: Api, body: bytes) -> httpx.Response:
    return api.http.post("/v1/jobs", content=body)


def nested(depth: int) -> bytes:
    return b'{"skill":"echo","inputs":{"text":"x","d":' + b"[" * depth + b"]" * depth + b"}}"


# -- JSON bodies --------------------------------------------------------------------------


def test_nul_anywhere_in_inputs_is_400_naming_where(api: Api) -> None:
    e = err(post_raw(api, b'{"skill":"echo","inputs":{"text":"a\\u0000b"}}'))
    assert e["code"] == "invalid_body"
    assert "inputs.text" in e["message"]
    assert "NUL" in e["message"]
    e = err(post_raw(api, b'{"skill":"echo","inputs":{"text":"x","a":[1,{"b":"\\u0000"}]}}'))
    assert "inputs.a[1].b" in e["message"]
    e = err(post_raw(api, b'{"skill":"echo","inputs":{"text":"x","k\\u0000":1}}'))
    assert "key" in e["message"]
    assert "NUL" in e["message"]
    assert "skill" in err(post_raw(api, b'{"skill":"ec\\u0000ho","inputs":{}}'))["message"]
    # Nothing was created, and the platform goes on.
    assert api.http.get("/v1/jobs").json()["jobs"] == []
    still_serves(api)


def test_lone_surrogates_and_invalid_utf8_are_400(api: Api) -> None:
    e = err(post_raw(api, b'{"skill":"echo","inputs":{"text":"\\ud800"}}'))
    assert e["code"] == "invalid_json"
    assert "inputs.text" in e["message"]
    assert "surrogate" in e["message"]
    e = err(post_raw(api, b'{"skill":"echo","inputs":{"text":"\xff\xfe"}}'))
    assert e["code"] == "invalid_json"
    assert "UTF-8" in e["message"]
    # An encoded surrogate (CESU-8 style) is not UTF-8 either.
    assert (
        "UTF-8"
        in err(post_raw(api, b'{"skill":"echo","inputs":{"text":"\xed\xa0\x80"}}'))["message"]
    )
    still_serves(api)


def test_deep_inputs_are_400_and_the_connection_stays_usable(api: Api) -> None:
    for depth in (64, 1_000, 100_000):
        e = err(post_raw(api, nested(depth)))
        assert "64" in e["message"], e
        still_serves(api)
    # 63 levels under inputs.d (64 with inputs itself) are fine.
    r = post_raw(api, nested(63))
    assert r.status_code == 200, r.text


@pytest.fixture
def admin(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=stack.api_base, headers={"Authorization": f"Bearer {stack.admin_token}"}
    ) as c:
        yield c


def test_admin_bodies_are_checked_too(admin: httpx.Client) -> None:
    e = err(admin.post("/v1/admin/projects", content=b'{"name":"a\\u0000b"}'))
    assert "name" in e["message"]
    assert "UTF-8" in err(admin.post("/v1/admin/projects", content=b'{"name":"\xc3"}'))["message"]
    r = admin.post("/v1/admin/projects", json={"name": "fine"})
    assert r.status_code == 200, r.text
    same_connection(r)


# -- headers, query values, paths --------------------------------------------------------


def raw_request(base: str, head: bytes) -> bytes:
    """Send a request line and headers as bytes (clients refuse to send such headers)."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(head)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_control_characters_in_headers_are_400(api: Api) -> None:
    for bad in (b"a\x00b", b"a\x01b", b"a\x1bb", b"a\x7fb"):
        reply = raw_request(
            api.base,
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + api.key.encode()
            + b"\r\nIdempotency-Key: "
            + bad
            + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        )
        assert reply.startswith(b"HTTP/1.1 400 "), reply[:200]
    # What the HTTP parser lets through (bytes beyond ASCII) is ours to judge.
    e = err(
        api.http.post(
            "/v1/jobs",
            json={"skill": "echo", "inputs": {"text": "x"}},
            headers={b"Idempotency-Key": b"a\x85b"},
        )
    )
    assert "Idempotency-Key" in e["message"]
    still_serves(api)


def test_control_characters_and_bad_utf8_in_query_values_are_400(api: Api) -> None:
    e = err(api.http.get("/v1/jobs?status=a%00b"))
    assert e["code"] == "invalid_query"
    assert "`status`" in e["message"]
    assert "NUL" in e["message"]
    e = err(api.http.get("/v1/jobs?cursor=%ff"))
    assert "`cursor`" in e["message"]
    assert "UTF-8" in e["message"]
    assert "`limit`" in err(api.http.get("/v1/jobs?limit=1%0a"))["message"]
    e = err(api.http.post("/v1/jobs?wait=%00", json={"skill": "echo", "inputs": {"text": "x"}}))
    assert "`wait`" in e["message"]
    still_serves(api)


def test_control_characters_and_bad_utf8_in_path_parameters_are_400(api: Api) -> None:
    for path in (
        "/v1/jobs/a%00b",
        "/v1/jobs/a%00b/events",
        "/v1/jobs/%ed%a0%80/stream",
        "/v1/jobs/x%0a/cancel",
        "/v1/deployments/%ff/activate",
        "/v1/keys/p%00",
    ):
        method = "POST" if path.endswith(("cancel", "activate")) else "GET"
        if path.startswith("/v1/keys"):
            method = "DELETE"
        e = err(api.http.request(method, path))
        assert "path segment" in e["message"], (path, e)
    still_serves(api)


# -- deployments ---------------------------------------------------------------------------


def bundle(files: Mapping[str, str | bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


ECHO_PY = "def run(inputs):\n    return inputs\n"


def skill_bundle(skill_yaml: str | bytes, **extra: str | bytes) -> bytes:
    return bundle({"skills/x/skill.yaml": skill_yaml, "skills/x/main.py": ECHO_PY, **extra})


def push(api: Api, data: bytes, **fields: str) -> httpx.Response:
    return api.http.post(
        "/v1/deployments", files={"bundle": ("b.zip", data, "application/zip")}, data=fields
    )


def problems(r: httpx.Response) -> list[dict[str, Any]]:
    e = err(r)
    assert e["code"] == "invalid_bundle"
    found: list[dict[str, Any]] = e["problems"]
    assert found
    return found


def deploy_still_works(api: Api) -> None:
    r = push(api, skill_bundle("entrypoint: main.py:run\n"), activate="false")
    assert r.status_code == 200, r.text
    same_connection(r)


def test_nul_in_deployment_notes_is_400(api: Api) -> None:
    e = err(push(api, skill_bundle("entrypoint: main.py:run\n"), notes="a\x00b"))
    assert "notes" in e["message"]
    assert "NUL" in e["message"]
    deploy_still_works(api)


@pytest.mark.parametrize(
    ("skill_yaml", "field"),
    [
        ('entrypoint: main.py:run\ndescription: "a\\0b"\n', "description"),
        ('entrypoint: main.py:run\ndescription: "\\uD800"\n', "description"),
        (
            "entrypoint: main.py:run\ninput_schema:\n  type: object\n  properties:\n"
            '    "a\\0": {type: string}\n',
            "input_schema.properties",
        ),
        (
            "entrypoint: main.py:run\ninput_schema:\n  type: object\n"
            '  properties:\n    t: {type: string, description: "x\\0"}\n',
            "input_schema.properties.t.description",
        ),
    ],
)
def test_unstorable_text_in_skill_yaml_is_a_problem_naming_the_field(
    api: Api, skill_yaml: str, field: str
) -> None:
    [p] = problems(push(api, skill_bundle(skill_yaml)))
    assert p["file"] == "skills/x/skill.yaml"
    assert p["field"].startswith(field), p
    assert "NUL" in p["message"] or "surrogate" in p["message"]
    deploy_still_works(api)


def test_a_raw_nul_byte_in_skill_yaml_is_a_problem(api: Api) -> None:
    [p] = problems(push(api, skill_bundle(b"entrypoint: main.py:run\ndescription: a\x00b\n")))
    assert p["file"] == "skills/x/skill.yaml"
    assert "#x0000" in p["message"]
    deploy_still_works(api)


def test_nul_in_a_bundle_file_name_is_a_problem(api: Api) -> None:
    # zipfile cuts names at a NUL when it writes them: put the NUL in by hand (names
    # are outside the CRC, in the local header and the central directory alike).
    data = skill_bundle("entrypoint: main.py:run\n", **{"skills/x/aX.py": ""})
    data = data.replace(b"skills/x/aX.py", b"skills/x/a\x00.py")
    found = problems(push(api, data))
    assert any("control characters" in p["message"] for p in found), found
    deploy_still_works(api)


def deep_schema(levels: int) -> str:
    inner = "{type: string}"
    for _ in range(levels):
        inner = "{type: array, items: " + inner + "}"
    return f"entrypoint: main.py:run\ninput_schema: {inner}\n"


@pytest.mark.parametrize("levels", [80, 300])
def test_deep_schemas_are_a_deploy_time_problem(api: Api, levels: int) -> None:
    # 80: within what YAML composes, beyond the schema limit (the field is named);
    # 300: beyond what skill.yaml may nest at all (the line is named).
    [p] = problems(push(api, skill_bundle(deep_schema(levels))))
    assert p["file"] == "skills/x/skill.yaml"
    assert "nested deeper than" in p["message"]
    if levels == 80:
        assert p["field"].startswith("input_schema.items"), p
    deploy_still_works(api)


def test_deep_output_schema_is_a_problem_too(api: Api) -> None:
    text = deep_schema(80).replace("input_schema", "output_schema")
    [p] = problems(push(api, skill_bundle(text)))
    assert p["field"].startswith("output_schema"), p


def test_yaml_bombs_are_problems_not_crashes(api: Api) -> None:
    deep = "entrypoint: main.py:run\ndescription: " + "[" * 50_000 + "]" * 50_000 + "\n"
    [p] = problems(push(api, skill_bundle(deep)))
    assert "nested deeper than 100" in p["message"]
    deploy_still_works(api)
    laughs = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        laughs.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    bomb = "\n".join(["entrypoint: main.py:run", "input_schema:", "  x-puras:"])
    bomb += "\n" + "\n".join("    " + line for line in laughs) + "\n"
    [p] = problems(push(api, skill_bundle(bomb)))
    assert "aliases" in p["message"]
    # Aliases nesting a tree inside itself, deeper than the file shows.
    chain = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [[[[[[[[[[*a{i - 1}]]]]]]]]]]" for i in range(1, 20)]
    nest = "entrypoint: main.py:run\ninput_schema:\n  x-puras:\n"
    nest += "\n".join("    " + line for line in chain) + "\n"
    [p] = problems(push(api, skill_bundle(nest)))
    assert "nested deeper than" in p["message"]
    deploy_still_works(api)


# -- requirements.txt ------------------------------------------------------------------------

BAD_REQUIREMENT_LINES = [
    "./pkg",
    "../x",
    "/abs/pkg",
    "file:///opt/wheels/x.whl",
    "x @ file:///etc/passwd",
    "-e ./pkg",
    "--editable=../pkg",
    "-r base.txt",
    "--requirement ../../etc/x.txt",
    "-c /abs/constraints.txt",
    "--constraint=../c.txt",
    "-i https://evil.example/simple",
    "--index-url https://evil.example/simple",
    "--extra-index-url=https://evil.example/simple",
    "--find-links https://evil.example/wheels",
    "-f ./wheels",
    "--trusted-host evil.example",
    "--pre",
    "pkg @ https://evil.example/pkg.zip",
    "https://evil.example/pkg-1.0-py3-none-any.whl",
    "git+https://evil.example/pkg.git",
    "pkg-1.0.tar.gz",
    "pkg==${PURAS_ADMIN_TOKEN}",
]


def test_requirements_lines_outside_the_index_are_problems_naming_the_line(api: Api) -> None:
    text = "# our requirements\n" + "\n".join(BAD_REQUIREMENT_LINES) + "\n"
    found = problems(
        push(api, skill_bundle("entrypoint: main.py:run\n", **{"requirements.txt": text}))
    )
    lines = {p["field"]: p["message"] for p in found if p["file"] == "requirements.txt"}
    assert sorted(lines) == sorted(f"line {n}" for n in range(2, 2 + len(BAD_REQUIREMENT_LINES)))
    assert "local path" in lines["line 2"]
    assert "-r base.txt" in lines["line 9"]
    assert "PURAS_GATEWAY_ALLOWED_INDEX_URLS" in lines["line 13"]
    assert "direct URL" in lines["line 20"]
    deploy_still_works(api)


def test_plain_requirements_comments_and_an_allowed_index_pass(api: Api) -> None:
    text = "\n".join(
        [
            "# comment",
            "",
            f"--index-url {ALLOWED_INDEX}",
            f"--extra-index-url={ALLOWED_INDEX}/",
            "requests>=2.31,<3  # trailing comment",
            'Django[argon2] (>=4.2) ; python_version >= "3.10"',
            "numpy==1.26.4 \\",
            "    --hash=sha256:0123456789abcdef",
            "attrs",
        ]
    )
    # Accepted by validation: the push answers before the build (Z7), which this
    # made-up index and hash would fail.
    r = push(
        api,
        skill_bundle("entrypoint: main.py:run\n", **{"requirements.txt": text}),
        activate="false",
        wait="false",
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "building"


# -- a job's own output -------------------------------------------------------------------------

OUTPUT_PROJECT = {
    "skills/prints/skill.yaml": "entrypoint: main.py:run\n",
    "skills/prints/main.py": (
        "import sys\n"
        "def run(inputs):\n"
        "    print('a\\x00b')\n"
        "    sys.stderr.write('e\\x00rr\\n')\n"
        "    return {}\n"
    ),
    "skills/raises/skill.yaml": "entrypoint: main.py:run\n",
    "skills/raises/main.py": "def run(inputs):\n    raise ValueError('x\\x00y')\n",
    "skills/returns/skill.yaml": (
        "entrypoint: main.py:run\n"
        "output_schema:\n"
        "  type: object\n"
        "  properties:\n"
        "    t: {type: string, maxLength: 3}\n"
        "  required: [t]\n"
    ),
    "skills/returns/main.py": "def run(inputs):\n    return {'t': 'a\\x00b', 'k\\x00': 1}\n",
    "skills/deep/skill.yaml": "entrypoint: main.py:run\n",
    "skills/deep/main.py": (
        "def run(inputs):\n"
        "    v = 1\n"
        "    for _ in range(100):\n"
        "        v = [v]\n"
        "    return {'v': v}\n"
    ),
}


def test_nul_in_a_jobs_own_output_is_escaped_and_the_platform_goes_on(
    api: Api, stack: Stack
) -> None:
    r = push(api, bundle(OUTPUT_PROJECT))
    assert r.status_code == 200, r.text

    printed = api.run("prints", {})
    assert printed["status"] == "succeeded", printed
    logs = [e["payload"] for e in api.events(printed["id"]) if e["type"] == "log"]
    lines = {(p["stream"], line) for p in logs for line in p["lines"]}
    assert ("stdout", f"a{REPLACEMENT}b") in lines, logs
    assert ("stderr", f"e{REPLACEMENT}rr") in lines, logs

    raised = api.run("raises", {})
    assert raised["status"] == "failed", raised
    assert raised["error"].startswith(f"ValueError: x{REPLACEMENT}y"), raised["error"]
    assert "\x00" not in raised["error"]

    returned = api.run("returns", {})
    assert returned["status"] == "succeeded", returned
    # U+FFFD replaces one character by one: maxLength 3 still holds.
    assert returned["result"] == {"t": f"a{REPLACEMENT}b", f"k{REPLACEMENT}": 1}

    deep = api.run("deep", {})
    assert deep["status"] == "failed", deep
    assert "nested deeper than 64" in deep["error"]

    # The projections stored all of it: reads through Postgres show the same jobs.
    listed = {j["id"]: j for j in api.http.get("/v1/jobs", params={"limit": 10}).json()["jobs"]}
    assert listed[returned["id"]]["result"] == returned["result"]
    assert listed[raised["id"]]["error"] == raised["error"]
    rows = api.http.get(f"/v1/jobs/{printed['id']}/events").json()["events"]
    assert [e["type"] for e in rows][-1] == "succeeded"

    assert httpx.get(f"{api.base}/readyz").status_code == 200
    # Another tenant's job still runs.
    other = new_api(stack, "other-tenant-after-nul")
    try:
        assert other.push().status_code == 200
        job = other.run("echo", {"text": "still here"})
        assert job["status"] == "succeeded", job
        assert other.http.get(f"/v1/jobs/{job['id']}").json()["status"] == "succeeded"
    finally:
        other.close()
