"""The TypeScript client (``clients/typescript``) against the whole stack.

``npm ci`` installs its pinned dev dependencies once per lock file (a marker in
``node_modules`` holds the lock's hash, so reruns skip it); ``tsc`` type-checks and
builds it to ``dist/``. Its hand-written types are then held against the live
``/openapi.json``: ``openapi-typescript`` generates ``src/openapi.d.ts`` from it and
``tsc -p tsconfig.openapi.json`` compiles the type-level assertions of
``test/openapi.check.ts``. Last, Node's test runner runs ``test/*.mjs`` with a project
key: submit and wait, list pages, streams to their end, resumed from a Last-Event-ID and
after dropped connections, errors as ``PurasError``, drive uploads.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from puras_cli.devstack import Stack
from stackapi import Api

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "typescript"
MARKER = CLIENT / "node_modules" / ".puras-lock-sha256"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not on PATH: the TypeScript client needs Node 20+ and npm")
    return path


def _run(args: list[str], timeout: float, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        args,
        cwd=CLIENT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def node() -> str:
    """Node, with the client's dependencies installed and the client built."""
    node = _tool("node")
    npm = _tool("npm")
    lock = hashlib.sha256((CLIENT / "package-lock.json").read_bytes()).hexdigest()
    if not MARKER.is_file() or MARKER.read_text() != lock:
        _run([npm, "ci", "--no-audit", "--no-fund"], timeout=300)
        MARKER.write_text(lock)
    _run([node, "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], timeout=120)
    return node


def test_the_hand_written_types_hold_against_the_live_openapi_document(
    stack: Stack, node: str, tmp_path: Path
) -> None:
    r = httpx.get(f"{stack.api_base}/openapi.json", timeout=30)
    assert r.status_code == 200, r.text
    doc = tmp_path / "openapi.json"
    doc.write_bytes(r.content)
    _run(
        [
            node,
            "node_modules/openapi-typescript/bin/cli.js",
            str(doc),
            "--empty-objects-unknown",
            "-o",
            "src/openapi.d.ts",
        ],
        timeout=120,
    )
    assert "export interface paths" in (CLIENT / "src" / "openapi.d.ts").read_text()
    _run([node, "node_modules/typescript/bin/tsc", "-p", "tsconfig.openapi.json"], timeout=120)


def test_the_client_runs_against_the_stack(stack: Stack, api: Api, node: str) -> None:
    out = _run(
        [node, "--test", "test/sse.test.mjs", "test/client.test.mjs", "test/e2e.mjs"],
        timeout=120,
        env={"PURAS_API_BASE": stack.api_base, "PURAS_API_KEY": api.key},
    )
    # Node's reporter ends with the counts: every test ran and passed, none was skipped.
    counts = {k: int(v) for k, v in re.findall(r"^# (tests|pass|fail|skipped) (\d+)$", out, re.M)}
    assert counts.get("tests", 0) >= 18, out
    assert counts == {"tests": counts["tests"], "pass": counts["tests"], "fail": 0, "skipped": 0}, (
        out
    )
